import { execFileSync } from "node:child_process";
import { appendFileSync, chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Host } from "./netns.js";
import { NsProcess } from "./proc.js";

// The Compose file's infrastructure images, played by the machine's own servers inside their
// namespaces and configured from the same environment the Compose file gives the images.

const PG_BIN = `/usr/lib/postgresql/${execFileSync("ls", ["/usr/lib/postgresql"]).toString().trim().split("\n")[0]}/bin`;
const PATH = process.env.PATH ?? "/usr/bin:/bin";

/** postgres:16-alpine: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, password auth from other hosts. */
export function startPostgres(host: Host, env: Record<string, string>, dir: string): NsProcess {
  const data = join(dir, "data");
  mkdirSync(dir, { recursive: true });
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString());
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString());
  chownSync(dir, uid, gid);
  const pwfile = join(dir, "pw");
  writeFileSync(pwfile, env.POSTGRES_PASSWORD ?? "");
  chownSync(pwfile, uid, gid);
  execFileSync(
    "runuser",
    [
      "-u",
      "postgres",
      "--",
      `${PG_BIN}/initdb`,
      "-D",
      data,
      "-U",
      env.POSTGRES_USER ?? "postgres",
      `--pwfile=${pwfile}`,
    ],
    { stdio: "pipe", env: { PATH } },
  );
  appendFileSync(join(data, "pg_hba.conf"), "host all all 0.0.0.0/0 scram-sha-256\n");
  return new NsProcess(
    "postgres",
    host.ns,
    [
      `${PG_BIN}/postgres`,
      "-D",
      data,
      "-c",
      "listen_addresses=*",
      "-c",
      `unix_socket_directories=${dir}`,
      "-p",
      "5432",
    ],
    { env: { PATH }, user: "postgres" },
  );
}

/** Creates POSTGRES_DB once the server answers (the image's entrypoint does the same). */
export function createDatabase(env: Record<string, string>, dir: string): void {
  execFileSync(
    "runuser",
    [
      "-u",
      "postgres",
      "--",
      `${PG_BIN}/createdb`,
      "-h",
      dir,
      "-U",
      env.POSTGRES_USER ?? "postgres",
      env.POSTGRES_DB ?? "chat",
    ],
    { stdio: "pipe", env: { PATH } },
  );
}

export function pgReady(host: Host): boolean {
  try {
    execFileSync(`${PG_BIN}/pg_isready`, ["-h", host.ip, "-p", "5432", "-q"], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

/** redis:7-alpine with the Compose file's command. */
export function startRedis(host: Host, command: string[], dir: string): NsProcess {
  mkdirSync(dir, { recursive: true });
  const args = command[0] === "redis-server" ? command.slice(1) : command;
  return new NsProcess(
    "redis",
    host.ns,
    ["redis-server", ...args, "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", dir, "--save", ""],
    { env: { PATH } },
  );
}

/** nats:2.10-alpine with the Compose file's command, its /data in a folder of its own. */
export function startNats(host: Host, command: string[], dir: string): NsProcess {
  mkdirSync(dir, { recursive: true });
  const args = command.map((a) => (a === "/data" ? dir : a));
  return new NsProcess("nats", host.ns, ["nats-server", ...args], { env: { PATH } });
}

/** caddy:2-alpine with the Compose file's Caddyfile. */
export function startCaddy(host: Host, caddyfile: string, dir: string): NsProcess {
  mkdirSync(dir, { recursive: true });
  return new NsProcess("proxy", host.ns, ["caddy", "run", "--adapter", "caddyfile", "--config", caddyfile], {
    env: { PATH, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
  });
}
