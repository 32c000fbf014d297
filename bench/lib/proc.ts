import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { freePort } from "@service-chat/testing";
import { cpuSeconds, rssBytes, type Tracked } from "./cpu.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PROBE = fileURLToPath(new URL("./probe.mjs", import.meta.url));
const WORKER = fileURLToPath(new URL("../workers/generator.ts", import.meta.url));

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export { freePort };

export type Kind = "server" | "baseline" | "generator" | "tool";

/** A process this run started; every one of them is stopped by stopAll(), whatever happens. */
export class Child {
  private tail = "";
  readonly exited: Promise<number | null>;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private listeners = new Set<(m: Record<string, unknown>) => void>();

  constructor(
    readonly name: string,
    readonly kind: Kind,
    readonly child: ChildProcess,
  ) {
    const keep = (d: Buffer) => {
      this.tail = (this.tail + d.toString()).slice(-20_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    this.exited = new Promise((resolve) =>
      child.once("exit", (code) => {
        for (const p of this.pending.values()) p.reject(new Error(`${name} exited (${code}):\n${this.output()}`));
        this.pending.clear();
        running.delete(this);
        resolve(code);
      }),
    );
    child.on("message", (m: Record<string, unknown>) => {
      if (typeof m?.reply === "number") {
        const p = this.pending.get(m.reply);
        this.pending.delete(m.reply);
        if (m.error) p?.reject(new Error(`${name}: ${String(m.error)}`));
        else p?.resolve(m.result);
        return;
      }
      for (const l of this.listeners) l(m);
    });
    running.add(this);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  output(): string {
    return this.tail;
  }

  /** Calls a command over the IPC channel (generators, and the probe in servers). */
  call<T>(cmd: string, args: unknown = {}, timeoutMs = 600_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} took more than ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ call: id, cmd, args });
    });
  }

  once(match: (m: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(l);
        reject(new Error(`${this.name}: no expected message in ${timeoutMs} ms:\n${this.output()}`));
      }, timeoutMs);
      const l = (m: Record<string, unknown>) => {
        if (!match(m)) return;
        clearTimeout(timer);
        this.listeners.delete(l);
        resolve(m);
      };
      this.listeners.add(l);
    });
  }

  cpuSeconds(): number | undefined {
    return cpuSeconds(this.pid);
  }

  rss(): number | undefined {
    return rssBytes(this.pid);
  }

  tracked(): Tracked {
    return { label: this.name, pid: this.pid, generator: this.kind === "generator" || this.kind === "tool" };
  }

  async stop(graceMs = 8_000): Promise<void> {
    if (!this.alive) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

const running = new Set<Child>();

export const runningChildren = (): Child[] => [...running];

/** Stops every process still running: generators first, then baselines and servers. */
export async function stopAll(): Promise<void> {
  const order: Kind[] = ["generator", "tool", "baseline", "server"];
  for (const kind of order) {
    await Promise.allSettled([...running].filter((c) => c.kind === kind).map((c) => c.stop()));
  }
}

/** Kills what is left at once (the process is exiting and cannot wait). */
export function killAllNow(): void {
  for (const c of running) if (c.alive) c.child.kill("SIGKILL");
}

export interface NodeOptions {
  env?: Record<string, string>;
  /** Node flags before the script (e.g. --cpu-prof). */
  flags?: string[];
  /** Preload the probe (memory after GC on request; exits when the run goes away). */
  probe?: boolean;
  /** The CPUs the process may run on (`taskset -c`, e.g. "0"); any when absent. */
  cpus?: string;
  /** `script` is compiled JavaScript (the build): run by node alone, without the TypeScript loader. */
  compiled?: boolean;
}

/**
 * Starts `node --conditions=@service-chat/source --import tsx <script>` (the workspace packages
 * from their sources), or `node <script>` for a `compiled` one, from the repository root with an
 * IPC channel; with `cpus`,
 * through `taskset -c CPUS` (which sets the affinity and then becomes node: same pid, same channel).
 */
export function spawnNode(name: string, kind: Kind, script: string, options: NodeOptions = {}): Child {
  const args = [...(options.flags ?? [])];
  if (options.probe) args.push("--expose-gc");
  if (!options.compiled) args.push("--conditions=@service-chat/source", "--import", "tsx");
  if (options.probe) args.push("--import", PROBE);
  args.push(script);
  const [command, argv] = options.cpus
    ? ["taskset", ["-c", options.cpus, process.execPath, ...args]]
    : [process.execPath, args];
  const child = spawn(command, argv, {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  return new Child(name, kind, child);
}

export function startGenerator(name: string, cpus?: string): Promise<Child> {
  const c = spawnNode(name, "generator", WORKER, cpus ? { cpus } : {});
  // A bound, not an expected wait: on a busy machine (or a pinned, shared core) tsx starts slowly.
  return c.once((m) => m.ready === true, 120_000).then(() => c);
}

export interface Server {
  proc: Child;
  httpUrl: string;
  grpcUrl: string;
  wsUrl: string;
}

/**
 * Starts a Service Chat process from the build, as `npm start` runs it (`node
 * apps/default/dist/main.js`; `npm run bench` builds first), on free ports and waits until ready; `cpus` pins it (taskset -c) from its first instruction.
 */
export async function startServer(
  name: string,
  env: Record<string, string>,
  flags: string[] = [],
  cpus?: string,
): Promise<Server> {
  const [http, grpc] = [await freePort(), await freePort()];
  const proc = spawnNode(name, "server", "apps/default/dist/main.js", {
    compiled: true,
    env: { ...env, HTTP_PORT: String(http), GRPC_PORT: String(grpc), BIND_HOST: "127.0.0.1" },
    flags,
    probe: true,
    ...(cpus ? { cpus } : {}),
  });
  const server = {
    proc,
    httpUrl: `http://127.0.0.1:${http}`,
    grpcUrl: `http://127.0.0.1:${grpc}`,
    wsUrl: `ws://127.0.0.1:${http}/ws`,
  };
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    const ok = await fetch(`${server.httpUrl}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return server;
    if (!proc.alive) break;
    await sleep(200);
  }
  await proc.stop(1000);
  throw new Error(`${name} did not become ready:\n${proc.output()}`);
}

export interface MemoryReading {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

/** Memory of a process started with the probe, after full garbage collections. */
export function memoryAfterGc(proc: Child): Promise<MemoryReading> {
  return proc.call<MemoryReading>("memory", {}, 30_000);
}

/** Writes a V8 heap snapshot of a process started with the probe to `file` (bench/heapsnapshot-diff.ts reads it). */
export function heapSnapshot(proc: Child, file: string): Promise<string> {
  return proc.call<string>("heap-snapshot", { file }, 600_000);
}

/** Sums a counter or gauge of a process's /metrics (Prometheus text), over all its labels. */
export async function metric(httpUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`).exec(line);
    if (m) total += Number(m[1]);
  }
  return total;
}
