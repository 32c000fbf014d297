import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import {
  type ChatService,
  ClientFrameSchema,
  type ServerFrame,
  type SyncDevicesRequest,
  SyncResponseSchema,
} from "@service-chat/api";
import {
  type ConnectionInfo,
  createLogger,
  type Identity,
  MemoryBus,
  MemoryRegistry,
  OutageLog,
} from "@service-chat/core";
import { DISCONNECT, type Disconnect } from "@service-chat/protocol";
import { until } from "@service-chat/testing/until";
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
  maxPendingSends: 1000,
  sendQueueMaxBytes: 1024 * 1024,
  replayPageSize: 500,
  maxHeldFrames: 10_000,
  maxConnections: 100,
  fullRetryAfterMs: 5000,
};

/** A session on an in-memory hub and registry, whose ChatService answers an empty Sync. */
function session(identity: Identity, overrides: Partial<Limits> = {}) {
  const sent: ServerFrame[] = [];
  const closed: Disconnect[] = [];
  const empty = create(SyncResponseSchema, {});
  const chat = {
    sync: async () => empty,
    syncDevices: async (req: SyncDevicesRequest) => ({
      devices: req.devices.map(() => ({ result: { case: "response", value: empty } })),
      events: [],
      encodedEvents: [],
    }),
  } as unknown as Client<typeof ChatService>;
  const s = new DeviceSession(
    {
      auth: { verify: async () => identity },
      openPort: chatClientPort(chat),
      hub: new LiveHub(new MemoryBus(), "gw", createLogger("silent")),
      registry: new MemoryRegistry(),
      gatewayId: "gw",
      limits: { ...limits, ...overrides },
      logger: createLogger("silent"),
      outage: new OutageLog(createLogger("silent"), "chat service"),
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
    await until("the hello to be handled", () => sent.some((f) => f.frame.case === "synced") || closed.length > 0);
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

  // The session reads the machine's clock when it starts and when it hears from the device; the
  // test ticks it with times taken before and after those moments, so that however long the
  // machine pauses in between, each tick is on the side of a deadline the test means.

  it("closes a connection that sends no hello in time", () => {
    const before = Date.now();
    const { s, closed } = session(ann);
    const after = Date.now();
    s.tick(before + limits.helloTimeoutMs - 1);
    expect(closed).toEqual([]);
    s.tick(after + limits.helloTimeoutMs);
    expect(closed).toEqual([DISCONNECT.badFrame]);
  });

  it("sends heartbeats once welcomed, and closes a device silent for longer than the timeout", async () => {
    const quiet = { heartbeatMs: 1_000, timeoutMs: 60_000 };
    const { s, closed, hello, kinds } = session(ann, quiet);
    const before = Date.now();
    await hello();
    const after = Date.now();
    expect(kinds()).toEqual(["welcome", "synced"]);
    const due: ConnectionInfo[] = [];
    s.tick(before + quiet.heartbeatMs - 1, due);
    expect(kinds()).toEqual(["welcome", "synced"]);
    s.tick(after + quiet.heartbeatMs, due);
    s.tick(after + quiet.heartbeatMs + 1, due); // the next one is a heartbeat later, not every tick
    expect(kinds()).toEqual(["welcome", "synced", "pong"]);
    // The heartbeat is handed to the gateway, which refreshes the whole tick's in the registry at once.
    expect(due).toEqual([
      expect.objectContaining({
        connectionId: s.connectionId,
        profileId: "ann",
        lastHeartbeat: after + quiet.heartbeatMs,
      }),
    ]);
    expect(closed).toEqual([]);
    s.tick(after + quiet.timeoutMs + 1);
    expect(closed).toEqual([DISCONNECT.timeout]);
  });

  it("sends no heartbeat pong to a device that pinged since the last one (its answer was one), yet refreshes it", async () => {
    const quiet = { heartbeatMs: 1_000, timeoutMs: 60_000 };
    const { s, hello, kinds } = session(ann, quiet);
    await hello();
    const after = Date.now();
    s.receive(create(ClientFrameSchema, { frame: { case: "ping", value: {} } }));
    await until("the ping's answer", () => kinds().includes("pong"));
    const due: ConnectionInfo[] = [];
    s.tick(after + quiet.heartbeatMs, due);
    expect(kinds()).toEqual(["welcome", "synced", "pong"]);
    expect(due).toHaveLength(1);
    s.tick(after + 2 * quiet.heartbeatMs, due); // no ping since: this heartbeat pongs
    expect(kinds()).toEqual(["welcome", "synced", "pong", "pong"]);
    expect(due).toHaveLength(2);
  });

  it("closes the session when its token expires", async () => {
    // The token outlives the hello by far, and the device is never timed out for silence here.
    const expiresAt = Date.now() + 600_000;
    const { s, closed, hello } = session({ ...ann, expiresAt }, { timeoutMs: 3_600_000 });
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
