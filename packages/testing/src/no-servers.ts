import childProcess, { ChildProcess } from "node:child_process";
import { syncBuiltinESMExports } from "node:module";
import net from "node:net";
import { PGlite } from "@electric-sql/pglite";

/**
 * The unit project's setup: a unit test needs no server of any kind, and this keeps it honest.
 * Opening a socket (PostgreSQL, NATS, Redis, HTTP — loopback included), listening on one,
 * starting a process or an embedded PGlite database fails the test at once, saying what it tried.
 * Such a test belongs in test/integration or test/e2e.
 */
function refuse(what: string): never {
  throw new Error(`a unit test must not ${what}: it belongs in test/integration (or test/e2e)`);
}

const where = (args: unknown[]) => {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0]; // net.connect hands over normalised arguments
  if (first && typeof first === "object") {
    const o = first as { path?: string; host?: string; port?: number };
    return o.path ?? `${o.host ?? "localhost"}:${o.port}`;
  }
  return args.map(String).join(":");
};

net.Socket.prototype.connect = function connect(...args: unknown[]) {
  refuse(`open a connection (to ${where(args)})`);
} as typeof net.Socket.prototype.connect;

net.Server.prototype.listen = function listen(...args: unknown[]) {
  refuse(`listen (on ${where(args)})`);
} as typeof net.Server.prototype.listen;

// spawn, exec, execFile and fork all start their process through ChildProcess#spawn.
(ChildProcess.prototype as unknown as { spawn(options: { file?: string }): void }).spawn = (options) =>
  refuse(`start a process (${options?.file})`);
for (const name of ["spawnSync", "execSync", "execFileSync"] as const) {
  (childProcess as Record<string, unknown>)[name] = (file: string) => refuse(`start a process (${file})`);
}
syncBuiltinESMExports();

PGlite.create = (() => refuse("open an embedded PGlite database")) as typeof PGlite.create;
