import { execFileSync } from "node:child_process";
import { cpus } from "node:os";

/**
 * CPU pinning for the one-core method (performance.md, "The message path, measured on one
 * core"): the processes a run starts are pinned at spawn (`spawnNode({cpus})`, `taskset -c`);
 * servers already running on the machine — PostgreSQL (the postmaster and its children),
 * nats-server, redis-server — are pinned here by pid (`taskset -a -p MASK PID`) and put back on
 * every CPU afterwards, also when the run fails or is interrupted (a run killed outright cannot:
 * `taskset -a -p <all> $(pgrep -x postgres)` does it by hand).
 */

/** taskset masks: CPU 0 for the servers, CPU 1 for the load. */
export const SERVER_CPU = { list: "0", mask: "1" };
export const LOAD_CPU = { list: "1", mask: "2" };
const ALL_MASK = ((1n << BigInt(cpus().length)) - 1n).toString(16);

/** Pids of every running process called `name` (pgrep -x), none when there is none. */
function pids(name: string): number[] {
  try {
    return execFileSync("pgrep", ["-x", name], { stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // pgrep exits with 1 when nothing matches
  }
}

function setAffinity(pid: number, mask: string): boolean {
  try {
    execFileSync("taskset", ["-a", "-p", mask, String(pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false; // gone meanwhile, or not ours to change
  }
}

export interface Pinned {
  name: string;
  /** Processes pinned (0: none running here, e.g. a server on another machine). */
  processes: number;
}

const pinnedNames = new Set<string>();
let selfPinned = false;
let hooked = false;

function restoreOnExit(): void {
  if (hooked) return;
  hooked = true;
  process.once("exit", restoreAll);
}

/**
 * Pins every running process called one of `names` to `mask`. Two passes, so a child forked
 * while the first ran (a new PostgreSQL backend, with the postmaster's old mask) is caught too;
 * children forked later inherit the new mask.
 */
export function pinRunning(names: string[], mask: string): Pinned[] {
  restoreOnExit();
  return names.map((name) => {
    pinnedNames.add(name);
    const done = new Set<number>();
    for (let pass = 0; pass < 2; pass++) {
      for (const pid of pids(name)) if (!done.has(pid) && setAffinity(pid, mask)) done.add(pid);
    }
    return { name, processes: done.size };
  });
}

/** Pins this process (the orchestrator, every thread) to `mask` until restoreAll. */
export function pinSelf(mask: string): void {
  restoreOnExit();
  selfPinned = setAffinity(process.pid, mask);
}

/**
 * Puts every process pinned here back on all CPUs: each process now called by a pinned name
 * (backends forked since included), and this one. Safe to call more than once.
 */
export function restoreAll(): void {
  for (const name of pinnedNames) for (const pid of pids(name)) setAffinity(pid, ALL_MASK);
  pinnedNames.clear();
  if (selfPinned) setAffinity(process.pid, ALL_MASK);
  selfPinned = false;
}
