import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** CPU accounting from /proc: utime + stime of each process, and the machine's busy time. */

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds a process has used so far (utime + stime), or undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name is in parentheses and may contain spaces: fields count from after it.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Resident set size of a process in bytes (VmRSS), or undefined once it is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function machineTicks(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] as string;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}

interface ProcInfo {
  pid: number;
  comm: string;
  cmdline: string;
}

function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const comm = readFileSync(`/proc/${name}/comm`, "utf8").trim();
      if (comm !== "postgres" && comm !== "nats-server" && comm !== "redis-server") continue;
      const cmdline = readFileSync(`/proc/${name}/cmdline`, "utf8").replace(/\0/g, " ").trim();
      out.push({ pid: Number(name), comm, cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const PG_SHARED =
  /^(\/usr\/lib\/postgresql\/\S+\/postgres\b|postgres: \S+: (checkpointer|background writer|walwriter|autovacuum launcher|logical replication launcher|stats collector|archiver))/;

/**
 * Who the infrastructure processes belong to: PostgreSQL backends of our database (by name in
 * their command line), PostgreSQL's shared processes (WAL writer, checkpointer, …), nats-server,
 * redis-server. Backends of other databases are someone else's load and count as "other".
 */
function infraLabel(p: ProcInfo, dbNames: string[]): string | undefined {
  if (p.comm === "nats-server") return "nats-server";
  if (p.comm === "redis-server") return "redis-server";
  if (dbNames.some((db) => p.cmdline.includes(` ${db} `) || p.cmdline.endsWith(` ${db}`))) return "postgres (bench db)";
  if (PG_SHARED.test(p.cmdline)) return "postgres (shared)";
  return undefined;
}

export interface Tracked {
  label: string;
  pid: number;
  /** Generators are checked against the client-bound threshold. */
  generator?: boolean;
}

export interface CpuReport {
  wallSeconds: number;
  /** Cores used (CPU seconds / wall seconds) per label. */
  cores: Record<string, number>;
  /** The busiest single generator process, in cores. */
  busiestGenerator: number;
  clientBound: boolean;
  machineBusyCores: number;
  /** Busy time not accounted to any process above: other work on the machine during the step. */
  otherCores: number;
}

export const CLIENT_BOUND = 0.8;

/** Measures CPU of every tracked process and the infrastructure over one step. */
export class CpuMeter {
  private start?: { at: number; machine: number; byPid: Map<number, number>; labels: Map<number, Tracked> };

  constructor(
    private readonly tracked: () => Tracked[],
    private readonly dbNames: () => string[],
  ) {}

  private snapshot() {
    const labels = new Map<number, Tracked>();
    for (const t of this.tracked()) labels.set(t.pid, t);
    for (const p of listProcesses()) {
      const label = infraLabel(p, this.dbNames());
      if (label) labels.set(p.pid, { label, pid: p.pid });
    }
    const byPid = new Map<number, number>();
    for (const pid of labels.keys()) {
      const s = cpuSeconds(pid);
      if (s !== undefined) byPid.set(pid, s);
    }
    return { at: performance.now(), machine: machineTicks().busy, byPid, labels };
  }

  /** The latest reading of every process seen during the step (some end before it does). */
  private latest = new Map<number, number>();
  private labels = new Map<number, Tracked>();
  private sampler?: NodeJS.Timeout;

  private sample() {
    const s = this.snapshot();
    for (const [pid, v] of s.byPid) this.latest.set(pid, v);
    for (const [pid, t] of s.labels) this.labels.set(pid, t);
    return s;
  }

  begin(): void {
    this.latest.clear();
    this.labels.clear();
    this.start = this.snapshot();
    clearInterval(this.sampler);
    this.sampler = setInterval(() => this.sample(), 250);
    this.sampler.unref();
  }

  end(): CpuReport {
    const a = this.start;
    if (!a) throw new Error("CpuMeter.end without begin");
    clearInterval(this.sampler);
    const last = this.sample();
    // Processes that ended during the step count with their last reading; those that started
    // during it count from zero.
    const b = { at: last.at, machine: last.machine, byPid: this.latest, labels: this.labels };
    const wall = (b.at - a.at) / 1000;
    const cores: Record<string, number> = {};
    let busiestGenerator = 0;
    let accounted = 0;
    for (const [pid, after] of b.byPid) {
      const t = b.labels.get(pid) as Tracked;
      const used = after - (a.byPid.get(pid) ?? 0);
      accounted += used;
      cores[t.label] = (cores[t.label] ?? 0) + used / wall;
      if (t.generator) busiestGenerator = Math.max(busiestGenerator, used / wall);
    }
    const machine = (b.machine - a.machine) / wall;
    for (const k of Object.keys(cores)) cores[k] = round(cores[k] as number, 3);
    return {
      wallSeconds: round(wall, 2),
      cores,
      busiestGenerator: round(busiestGenerator, 3),
      clientBound: busiestGenerator > CLIENT_BOUND,
      machineBusyCores: round(machine, 3),
      otherCores: round(Math.max(0, machine - accounted / wall), 3),
    };
  }
}

export const round = (x: number, digits = 1): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** The kernel's count of connections dropped because a listen queue was full (machine-wide). */
export function listenOverflows(): number {
  try {
    const lines = readFileSync("/proc/net/netstat", "utf8").split("\n");
    const head = lines.find((l) => l.startsWith("TcpExt:"));
    const values = lines.filter((l) => l.startsWith("TcpExt:"))[1];
    if (!head || !values) return Number.NaN;
    const i = head.split(/\s+/).indexOf("ListenOverflows");
    return Number(values.split(/\s+/)[i]);
  } catch {
    return Number.NaN;
  }
}

/** Busy and total seconds of each CPU so far (the `cpuN` lines of /proc/stat). */
export function perCpuTicks(): { busy: number; total: number }[] {
  const out: { busy: number; total: number }[] = [];
  for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const v = (m[2] as string).trim().split(/\s+/).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    out[Number(m[1])] = { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
  }
  return out;
}

/** How busy each CPU was between two perCpuTicks readings (0–1 each). */
export function cpuBusy(a: { busy: number; total: number }[], b: { busy: number; total: number }[]): number[] {
  return b.map((x, i) => {
    const y = a[i];
    const total = y ? x.total - y.total : 0;
    return total > 0 ? round((x.busy - (y?.busy ?? 0)) / total, 3) : Number.NaN;
  });
}
