import net from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openDatabase } from "../../src/db/open.js";
import { isDatabaseUnavailable } from "../../src/db/unavailable.js";

// A "server" that accepts connections and never answers: a PostgreSQL behind a network that drops packets.
let silent: net.Server;
const sockets = new Set<net.Socket>();
beforeAll(async () => {
  silent = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => silent.close(resolve));
});

it("fails a call as unavailable when opening a connection takes longer than the connect timeout", async () => {
  const { port } = silent.address() as net.AddressInfo;
  const db = await openDatabase(`postgresql://postgres@127.0.0.1:${port}/postgres`, { connectTimeoutMs: 300 });
  try {
    const err = await db.ping().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(isDatabaseUnavailable(err)).toBe(true);
  } finally {
    await db.close().catch(() => {});
  }
});
