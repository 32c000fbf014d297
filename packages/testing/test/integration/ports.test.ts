import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { describe, expect, it } from "vitest";
import { freePort } from "../../src/ports.js";

const listen = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const s = createServer().once("error", reject);
    s.listen(port, "127.0.0.1", () => resolve(s));
  });
const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));

describe("freePort", () => {
  it("picks ports a server can bind, below the range the kernel hands to outgoing connections", async () => {
    const range = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(10_000);
      expect(port).toBeLessThan(range[0] ?? 0);
      await close(await listen(port));
    }
    // Random, not a counter every caller would share.
    expect(new Set(ports).size).toBeGreaterThan(1);
  });

  it("never picks a port a server listens on", async () => {
    // A tenth of the range held, so a picker that did not check would land on one within 200 picks.
    const held: Server[] = [];
    for (let i = 0; i < 2_000; i++) held.push(await listen(await freePort()));
    const taken = new Set(held.map((s) => (s.address() as { port: number }).port));
    for (let i = 0; i < 200; i++) expect(taken.has(await freePort())).toBe(false);
    await Promise.all(held.map(close));
  });
});
