import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.js";
import { UNTIL_TIMEOUT_MS, until } from "./until.js";

/** The repository's root, where `npm start` runs. */
export const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

/** A service process, started as `npm start` starts it: `node apps/default/dist/main.js` (built by the e2e set-up). */
export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  httpUrl: string;
  grpcUrl: string;
  /** Resolves with the exit code (null after a signal) once the process has exited. */
  exited: Promise<number | null>;
  /** The last 20,000 characters it wrote, stdout and stderr. */
  output(): string;
  /** SIGKILL: the process dies at once, as in a crash. */
  kill(): void;
  /** SIGTERM, then the exit code once it has exited (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<number | null>;
}

/** How often `startService` starts again on fresh ports when another process took one first. */
const PORT_TAKEN_RETRIES = 5;

/**
 * Starts a service process with `env` added, on `ports` (a restart on the ports it had) or on free
 * ones, and waits until it answers /readyz. On free ports, a process that exits because one was
 * taken between the pick and its bind is started again on others.
 */
export async function startService(
  name: string,
  env: Record<string, string>,
  ports?: { http: number; grpc: number },
): Promise<ServiceProcess> {
  for (let attempt = 0; ; attempt++) {
    const [http, grpc] = ports ? [ports.http, ports.grpc] : [await freePort(), await freePort()];
    const { proc, state } = await launch(name, env, http, grpc);
    if (state === "ready") return proc;
    const taken = state === "exited" && /is already in use \((HTTP|GRPC)_PORT\)/.test(proc.output());
    if (!ports && taken && attempt < PORT_TAKEN_RETRIES) continue;
    throw new Error(`${name} did not become ready (${state}):\n${proc.output()}`);
  }
}

async function launch(name: string, env: Record<string, string>, http: number, grpc: number) {
  const child = spawn(process.execPath, ["apps/default/dist/main.js"], {
    cwd: ROOT,
    // No wait between turning not ready and draining unless a test asks for one.
    env: { ...process.env, SHUTDOWN_UNREADY_SEC: "0", ...env, HTTP_PORT: String(http), GRPC_PORT: String(grpc) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // Up to 4 MB of output is kept: tests read it from an offset (`output().length` earlier), and
  // one access-log line per call fills a smaller window within a test.
  let output = "";
  const keep = (d: Buffer) => {
    output += d.toString();
    if (output.length > 4_000_000) output = output.slice(-2_000_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  // After "exit", output may still be on its way; "close" comes once stdout and stderr have ended.
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  const proc: ServiceProcess = {
    name,
    child,
    httpUrl: `http://127.0.0.1:${http}`,
    grpcUrl: `http://127.0.0.1:${grpc}`,
    exited,
    output: () => output,
    kill: () => void child.kill("SIGKILL"),
    async stop(graceMs = UNTIL_TIMEOUT_MS) {
      if (!running()) return exited;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  const state = await until(`${name} to answer /readyz`, async () => {
    if (!running()) return "exited";
    // Bounded, so that a port somebody else answers on (or never answers on) cannot hide the exit.
    const res = await fetch(`${proc.httpUrl}/readyz`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
    await res?.arrayBuffer();
    return res?.ok ? "ready" : false;
  }).catch((err: Error) => err.message);
  if (state !== "ready") {
    child.kill("SIGKILL");
    await closed;
  }
  return { proc, state };
}
