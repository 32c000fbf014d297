import { type AddressInfo, connect, createServer, type Socket } from "node:net";

export interface FaultProxy {
  /** Where to connect instead of the target: 127.0.0.1 and a free port. */
  host: string;
  port: number;
  /** `url` with its host and port replaced by the proxy's (any scheme: http://, postgresql://, …). */
  through(url: string): string;
  /** Breaks every open connection (no goodbye, as a dead network or a stopped server) and refuses new ones. */
  cut(): void;
  /** Accepts connections again. */
  restore(): void;
  /** Connections open through the proxy right now. */
  readonly open: number;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of a server, for faults a test can switch on and off: `cut()` drops every
 * connection and refuses new ones, as if the server (PostgreSQL, a gateway, the network) went away;
 * `restore()` lets connections through again. The server itself is never touched, so shared
 * servers stay up for everyone else.
 */
export async function faultProxy({ target }: { target: string }): Promise<FaultProxy> {
  const { hostname, port } = parseTarget(target);
  const pairs = new Set<Socket>();
  let down = false;
  const server = createServer((client) => {
    if (down) return void client.destroy();
    const upstream = connect(port, hostname);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      pairs.add(a);
      a.on("error", () => {});
      a.on("close", () => {
        pairs.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const own = (server.address() as AddressInfo).port;
  return {
    host: "127.0.0.1",
    port: own,
    through(url) {
      const u = new URL(url);
      u.hostname = "127.0.0.1";
      u.port = String(own);
      return u.toString();
    },
    cut() {
      down = true;
      for (const s of pairs) s.destroy();
    },
    restore() {
      down = false;
    },
    get open() {
      return Math.floor(pairs.size / 2);
    },
    close() {
      down = true;
      for (const s of pairs) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** "host:port", or a URL with a host and port. */
function parseTarget(target: string): { hostname: string; port: number } {
  const u = /^[a-z][a-z0-9+.-]*:\/\//i.test(target) ? new URL(target) : new URL(`tcp://${target}`);
  const port = Number(u.port);
  if (!u.hostname || !Number.isInteger(port) || port <= 0) {
    throw new Error(`faultProxy: target ${target} needs a host and a port`);
  }
  return { hostname: u.hostname.replace(/^\[|\]$/g, ""), port };
}
