import { EventEmitter } from "node:events";
import { Writable } from "node:stream";
import { expect, it } from "vitest";
import { logClientErrors } from "../../src/client-errors.js";
import { createLogger } from "../../src/logger.js";

it("logs a client's outage once as JSON, and its return once, however many errors it emits", () => {
  const lines: Record<string, unknown>[] = [];
  const out = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  const client = new EventEmitter();
  logClientErrors(client as never, "Redis (registry)", createLogger("info", false, out));
  for (let i = 0; i < 5; i++)
    client.emit("error", Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));
  client.emit("ready");
  client.emit("ready");
  client.emit("error", new Error("again"));
  expect(lines.map((l) => [l.level, l.msg])).toEqual([
    [40, "Redis (registry) unreachable"],
    [30, "Redis (registry) reachable again"],
    [40, "Redis (registry) unreachable"],
  ]);
  expect(lines[0]?.err).toMatchObject({ message: "connect ECONNREFUSED", code: "ECONNREFUSED" });
  // Without the listener, an EventEmitter would throw on "error" (ioredis prints it on stderr).
  expect(client.listenerCount("error")).toBe(1);
});
