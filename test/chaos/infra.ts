import { type ChildProcess, spawn } from "node:child_process";
import { freePort, until } from "@service-chat/testing";

/** A server of the fault suite's own (NATS, Redis), killed and started again on its port and data folder. */
export interface OwnServer {
  readonly name: string;
  readonly uri: string;
  kill(): void;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function ownServer(
  name: string,
  scheme: string,
  command: string,
  args: (port: number) => string[],
): Promise<OwnServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  let output = "";
  const start = async () => {
    child = spawn(command, args(port), { stdio: ["ignore", "pipe", "pipe"] });
    const keep = (d: Buffer) => {
      output = (output + d.toString()).slice(-5_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    await until(`${name} to listen on ${port}`, async () => {
      if (child?.exitCode !== null) throw new Error(`${name} exited:\n${output}`);
      const net = await import("node:net");
      return new Promise<boolean>((resolve) => {
        const s = net.connect(port, "127.0.0.1", () => {
          s.destroy();
          resolve(true);
        });
        s.on("error", () => resolve(false));
      });
    });
  };
  await start();
  const exited = () =>
    new Promise<void>((resolve) =>
      child && child.exitCode === null && child.signalCode === null ? child.once("exit", () => resolve()) : resolve(),
    );
  return {
    name,
    uri: `${scheme}://127.0.0.1:${port}`,
    kill() {
      child?.kill("SIGKILL");
    },
    async restart() {
      await exited();
      await start();
    },
    async stop() {
      child?.kill("SIGTERM");
      await exited();
    },
  };
}

/** nats-server with JetStream, storing in `dir`. */
export const ownNats = (dir: string) =>
  ownServer("nats", "nats", "nats-server", (port) => ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir]);

/** redis-server writing every change to its append-only file in `dir` (a restart keeps the streams). */
export const ownRedis = (dir: string) =>
  ownServer("redis", "redis", "redis-server", (port) => [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--dir",
    dir,
  ]);
