import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { framed } from "../../src/ws.js";

describe("live frames framed once for every socket", () => {
  it("are binary WebSocket frames a client reads back byte for byte, at every length encoding", async () => {
    const http = createServer();
    const wss = new WebSocketServer({ server: http });
    http.listen(0, "127.0.0.1");
    await once(http, "listening");
    const payloads = [0, 125, 126, 300, 65535, 65536, 200_000].map((n) =>
      Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) % 256),
    );
    wss.on("connection", (_ws, req) => {
      for (const p of payloads) req.socket.write(framed(p));
    });
    const client = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`);
    const got: { data: Buffer; binary: boolean }[] = [];
    client.on("message", (data: Buffer, binary) => got.push({ data, binary }));
    await expect.poll(() => got.length, { timeout: 5_000 }).toBe(payloads.length);
    got.forEach((g, i) => {
      expect(g.binary).toBe(true);
      expect(new Uint8Array(g.data)).toEqual(payloads[i]);
    });
    const first = payloads[3] as Uint8Array;
    expect(framed(first)).toBe(framed(first)); // made once per payload
    client.close();
    wss.close();
    http.close();
  });
});
