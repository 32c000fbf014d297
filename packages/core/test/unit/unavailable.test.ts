import { Writable } from "node:stream";
import { isDatabaseUnavailable, OutageLog } from "@service-chat/core";
import { pino } from "pino";
import { describe, expect, it } from "vitest";

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe("isDatabaseUnavailable", () => {
  it.each([
    ["connection refused", withCode("connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED")],
    ["connection reset", withCode("read ECONNRESET", "ECONNRESET")],
    ["server shutting down", withCode("terminating connection due to administrator command", "57P01")],
    ["server starting", withCode("the database system is starting up", "57P03")],
    ["too many connections", withCode("sorry, too many clients already", "53300")],
    ["a lost connection", new Error("Connection terminated unexpectedly")],
    ["a pool that could not connect in time", new Error("timeout exceeded when trying to connect")],
    ["a cause", new Error("batch failed", { cause: withCode("x", "ECONNREFUSED") })],
    ["one of several", new AggregateError([new Error("a"), withCode("b", "ECONNREFUSED")])],
  ])("is true for %s", (_, err) => {
    expect(isDatabaseUnavailable(err)).toBe(true);
  });

  it.each([
    ["a unique violation", withCode('duplicate key value violates unique constraint "x"', "23505")],
    ["a syntax error", withCode("syntax error at or near", "42601")],
    ["a plain error", new Error("boom")],
    ["not an error", "ECONNREFUSED"],
  ])("is false for %s", (_, err) => {
    expect(isDatabaseUnavailable(err)).toBe(false);
  });
});

describe("OutageLog", () => {
  it("logs one warning when an outage begins, counts the rest, and one line when it ends", () => {
    const lines: { level: number; msg: string; refused?: number }[] = [];
    const logger = pino(
      new Writable({
        write(chunk, _, done) {
          lines.push(JSON.parse(chunk.toString()));
          done();
        },
      }),
    );
    const outage = new OutageLog(logger, "database");
    outage.ok();
    for (let i = 0; i < 1000; i++) outage.failed(new Error("down"));
    expect(outage.down).toBe(true);
    outage.ok();
    outage.ok();
    expect(lines.map((l) => [l.level, l.msg, l.refused])).toEqual([
      [40, "database unavailable: calls are answered 'unavailable' until it is back", undefined],
      [30, "database available again", 1000],
    ]);
  });
});
