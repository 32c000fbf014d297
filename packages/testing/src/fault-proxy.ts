import net from "node:net";

/**
 * A TCP proxy between a service and one of its servers (PostgreSQL, NATS, Redis) that a test can
 * break on purpose, without touching the server that other tests share:
 * - `cut()` drops every open connection at once, as a server restart or a broken network does;
 *   new connections go through;
 * - `down()` cuts and refuses new connections (connection refused) until `up()`, as a stopped
 *   server does.
 */
export interface FaultProxy {
  /** The proxy's own port, on 127.0.0.1. */
  readonly port: number;
  /** `uri` with its host and port replaced by the proxy's (e.g. a postgresql:// URI). */
  via(uri: string): string;
  /** Connections open through the proxy now. */
  readonly open: number;
  /** Connections the proxy has accepted so far. */
  readonly accepted: number;
  cut(): void;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts a proxy on a free port of 127.0.0.1 that forwards every connection to `to`: a host and
 * port, or a URL that has both (http://, postgresql://, …).
 */
export async function faultProxy(to: { host: string; port: number } | string): Promise<FaultProxy> {
  const target = typeof to === "string" ? hostAndPort(to) : to;
  const pairs = new Set<[net.Socket, net.Socket]>();
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(target.port, target.host);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  const port = await listen(0);
  const cut = () => {
    for (const [client, upstream] of pairs) {
      // A reset, not a polite FIN: what a client sees when its server goes away mid-session.
      client.resetAndDestroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  const stopListening = () =>
    new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  return {
    port,
    via(uri) {
      const u = new URL(uri);
      u.hostname = "127.0.0.1";
      u.port = String(port);
      return u.toString();
    },
    get open() {
      return pairs.size;
    },
    get accepted() {
      return accepted;
    },
    cut,
    async down() {
      const closed = stopListening();
      cut();
      await closed;
    },
    async up() {
      if (!server.listening) await listen(port);
    },
    async close() {
      const closed = stopListening();
      cut();
      await closed;
    },
  };
}

function hostAndPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  const port = Number(u.port);
  if (!u.hostname || !Number.isInteger(port) || port <= 0) {
    throw new Error(`faultProxy: ${url} needs a host and a port`);
  }
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port };
}
