import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { type ChatService, ClientFrameSchema, type ServerFrame, SyncResponseSchema } from "@service-chat/api";
import { createLogger, type Identity, MemoryBus, MemoryRegistry } from "@service-chat/core";
import { DISCONNECT, type Disconnect } from "@service-chat/protocol";
import { describe, expect, it } from "vitest";
import type { Limits } from "../../src/config.js";
import { LiveHub } from "../../src/hub.js";
import { chatClientPort } from "../../src/session/chat-port.js";
import { DeviceSession, tickInterval } from "../../src/session/device-session.js";

const limits: Limits = {
  heartbeatMs: 1_000,
  timeoutMs: 3_000,
  helloTimeoutMs: 2_000,
  maxConnectionsPerDevice: 5,
  eventsPerSecond: 100,
  rateLimitGraceSec: 5,
  sendQueueMaxBytes: 1024 * 1024,
  replayPageSize: 500,
  maxHeldFrames: 10_000,
};

/** A session on an in-memory hub and registry, whose ChatService answers an empty Sync. */
function session(identity: Identity) {
  const sent: ServerFrame[] = [];
  const closed: Disconnect[] = [];
  const chat = { sync: async () => create(SyncResponseSchema, {}) } as unknown as Client<typeof ChatService>;
  const s = new DeviceSession(
    {
      auth: { verify: async () => identity },
      openPort: chatClientPort(chat),
      hub: new LiveHub(new MemoryBus(), "gw", createLogger("silent")),
      registry: new MemoryRegistry(),
      gatewayId: "gw",
      limits,
      logger: createLogger("silent"),
      onEnd: () => {},
    },
    {
      open: true,
      backlogged: () => false,
      write: (f) => {
        sent.push(f);
        return undefined;
      },
      end: (r) => closed.push(r),
    },
  );
  const hello = async () => {
    s.receive(create(ClientFrameSchema, { frame: { case: "hello", value: { token: "t", deviceId: "d" } } }));
    for (let i = 0; i < 50 && !sent.some((f) => f.frame.case === "synced"); i++)
      await new Promise((r) => setImmediate(r));
  };
  const kinds = () => sent.map((f) => f.frame.case);
  return { s, sent, closed, hello, kinds };
}

const ann: Identity = { profileId: "ann", contactId: "", deviceId: "" };

describe("the session clock (one gateway ticker, no timer per session)", () => {
  it("ticks often enough for the shortest deadline, at most every second", () => {
    expect(tickInterval(limits)).toBe(250);
    expect(tickInterval({ ...limits, heartbeatMs: 30_000, helloTimeoutMs: 10_000 })).toBe(1000);
  });

  it("closes a connection that sends no hello in time", () => {
    const { s, closed } = session(ann);
    const start = Date.now();
    s.tick(start + limits.helloTimeoutMs - 100);
    expect(closed).toEqual([]);
    s.tick(start + limits.helloTimeoutMs + 10);
    expect(closed).toEqual([DISCONNECT.badFrame]);
  });

  it("sends heartbeats once welcomed, and closes a device silent for longer than the timeout", async () => {
    const { s, closed, hello, kinds } = session(ann);
    await hello();
    expect(kinds()).toEqual(["welcome", "synced"]);
    const start = Date.now();
    s.tick(start + 500);
    expect(kinds()).toEqual(["welcome", "synced"]);
    s.tick(start + limits.heartbeatMs + 50);
    s.tick(start + limits.heartbeatMs + 100); // the next one is a heartbeat later, not every tick
    expect(kinds()).toEqual(["welcome", "synced", "pong"]);
    expect(closed).toEqual([]);
    s.tick(start + limits.timeoutMs + 100);
    expect(closed).toEqual([DISCONNECT.timeout]);
  });

  it("closes the session when its token expires", async () => {
    const expiresAt = Date.now() + 2_000; // sooner than the silence timeout
    const { s, closed, hello } = session({ ...ann, expiresAt });
    await hello();
    s.tick(expiresAt - 1);
    expect(closed).toEqual([]);
    s.tick(expiresAt);
    expect(closed).toEqual([DISCONNECT.authExpired]);
  });

  it("refuses a token that expired before the hello was handled", async () => {
    const { closed, hello } = session({ ...ann, expiresAt: Date.now() - 1 });
    await hello();
    expect(closed).toEqual([DISCONNECT.authExpired]);
  });
});
