import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../default/src/config.js";
import { gatewaySettings, limitsOf } from "../../src/config.js";

describe("the gateway's settings", () => {
  it("default to the limits the gateway has always had", () => {
    expect(limitsOf(loadConfig({}))).toEqual({
      heartbeatMs: 30_000,
      timeoutMs: 90_000,
      helloTimeoutMs: 10_000,
      maxConnectionsPerDevice: 1,
      eventsPerSecond: 100,
      rateLimitGraceSec: 5,
      maxPendingSends: 1000,
      sendQueueMaxBytes: 1024 * 1024,
      replayPageSize: 500,
      maxHeldFrames: 10_000,
      maxConnections: 18_000,
      fullRetryAfterMs: 5000,
    });
  });

  it("are validated with the rest of the process's config, every bad variable listed together", () => {
    const bad = () =>
      loadConfig({
        HTTP_PORT: "seventy",
        SEND_QUEUE_MAX_BYTES: "lots",
        REPLAY_PAGE_SIZE: "5000",
        SEND_QUEUE_MAX: "20",
      });
    expect(bad).toThrow(/HTTP_PORT/);
    expect(bad).toThrow(/SEND_QUEUE_MAX_BYTES/);
    expect(bad).toThrow(/REPLAY_PAGE_SIZE: must be at most 1000/);
    expect(bad).toThrow(/SEND_QUEUE_MAX: is replaced by SEND_QUEUE_MAX_BYTES/);
  });

  it("are checked against each other", () => {
    expect(() => loadConfig({ HEARTBEAT_INTERVAL_SEC: "60", CONNECTION_TIMEOUT_SEC: "60" })).toThrow(
      /CONNECTION_TIMEOUT_SEC: must be longer than HEARTBEAT_INTERVAL_SEC/,
    );
    expect(() => loadConfig({ SEND_QUEUE_MAX_BYTES: "100000", MAX_FRAME_BYTES: "200000" })).toThrow(
      /SEND_QUEUE_MAX_BYTES: must be at least MAX_FRAME_BYTES/,
    );
    expect(loadConfig({ SEND_QUEUE_MAX_BYTES: "100000", MAX_FRAME_BYTES: "100000" }).SEND_QUEUE_MAX_BYTES).toBe(
      100_000,
    );
  });

  it("are each documented in docs/configuration.md", () => {
    const doc = readFileSync(new URL("../../../../docs/configuration.md", import.meta.url), "utf8");
    const retired = new Set(["SEND_QUEUE_MAX"]);
    for (const name of Object.keys(gatewaySettings.shape).filter((n) => !retired.has(n))) {
      expect(doc, name).toMatch(new RegExp(`^\\| \`${name}\` `, "m"));
    }
  });
});
