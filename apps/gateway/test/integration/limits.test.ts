import { Code } from "@connectrpc/connect";
import { PresenceState } from "@service-chat/api";
import { type Device, groupRoom, startTestApp, type TestApp, text, until, wsDevice } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ MAX_EVENTS_PER_SECOND: "20", SEND_QUEUE_MAX_BYTES: "65536", MAX_FRAME_BYTES: "4096" });
});
afterAll(() => t.stop());

const token = (sub: string, device_id: string, ttl_s?: number) =>
  t.signer.sign({ sub, device_id, ...(ttl_s ? { ttl_s } : {}) });
async function connect(user: string, device = "d", app = t): Promise<Device> {
  const hello = { token: await app.signer.sign({ sub: user, device_id: device }) };
  const d = await wsDevice(app.httpUrl, { case: "hello", value: hello });
  await d.waitFor((f) => f.frame.case === "welcome");
  return d;
}

/** Stops reading: what the gateway writes piles up in the kernel, then in the gateway. */
const stopReading = (d: Device) => (d as unknown as { socket: { _socket: { pause(): void } } }).socket._socket.pause();
const readAgain = (d: Device) => (d as unknown as { socket: { _socket: { resume(): void } } }).socket._socket.resume();

/** A bystander in the same room must keep getting events while another connection misbehaves. */
async function stillServed(bystander: Device, sender: string, roomId: string, body: string) {
  const { ack } = await t.as(sender).sendEvent({ event: [text(roomId, body)] });
  await bystander.waitFor((f) => f.frame.case === "event" && f.frame.value.seq === ack[0]?.seq);
}

describe("limits", () => {
  it("answers frames beyond the rate with resource_exhausted, then disconnects a sustained flood (4006)", async () => {
    const roomId = await groupRoom(t, "rl-a", "rl-b");
    const flood = await connect("rl-a");
    const bystander = await connect("rl-b");
    for (let i = 0; i < 30; i++) flood.send({ requestId: `p${i}`, frame: { case: "ping", value: {} } });
    const limited = await flood.waitFor((f) => f.frame.case === "error");
    expect(limited.frame.value).toMatchObject({ code: "resource_exhausted" });
    for (let i = 0; i < 200; i++) flood.send({ frame: { case: "ping", value: {} } });
    expect((await flood.closed).code).toBe(4006);
    await stillServed(bystander, "rl-b", roomId, "still here");
    bystander.close();
  });

  it("refuses an oversized frame with an error and goes on", async () => {
    const roomId = await groupRoom(t, "big-a", "big-b");
    const d = await connect("big-a");
    const bystander = await connect("big-b");
    d.send({ requestId: "big", frame: { case: "send", value: text(roomId, "x".repeat(5000)) } });
    const err = await d.waitFor((f) => f.frame.case === "error");
    expect(err.frame.value).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/4096 bytes/) });
    d.send({ requestId: "small", frame: { case: "send", value: text(roomId, "fits") } });
    expect((await d.waitFor((f) => f.requestId === "small")).frame.case).toBe("ack");
    await stillServed(bystander, "big-b", roomId, "after the big one");
    d.close();
    bystander.close();
  });

  it("disconnects a device that does not read (4005, reconnect) without slowing the others", async () => {
    const roomId = await groupRoom(t, "slow-a", "slow-b", "slow-c");
    const slow = await connect("slow-b");
    const fast = await connect("slow-c");
    stopReading(slow);
    const body = "y".repeat(3000);
    for (let i = 0; i < 40; i++) {
      await t.as("slow-a").sendEvent({ event: Array.from({ length: 50 }, () => text(roomId, body)) });
    }
    await fast.waitFor((f) => f.frame.case === "event" && f.frame.value.seq === 2001n, 20_000);
    readAgain(slow);
    const closed = await slow.closed;
    expect(closed.code).toBe(4005);
    const frame = slow.frames.find((f) => f.frame.case === "disconnect");
    expect(frame?.frame.value).toMatchObject({ code: 4005, reconnect: true });
    fast.close();
  });

  it("disconnects a device that does not read as slow after large frames, far fewer than 1,000 (4005)", async () => {
    // The default bound, 1 MiB: a thousand frames of a few hundred bytes fit, sixty-odd of 16 KB.
    const app = await startTestApp();
    try {
      const roomId = await groupRoom(app, "large-a", "large-b", "large-c");
      const slow = await connect("large-b", "d", app);
      const fast = await connect("large-c", "d", app);
      stopReading(slow);
      const body = "z".repeat(16_000);
      let last = 0n;
      for (let i = 0; i < 30; i++) {
        const { ack } = await app
          .as("large-a")
          .sendEvent({ event: Array.from({ length: 20 }, () => text(roomId, body)) });
        last = ack.at(-1)?.seq ?? last;
      }
      await fast.waitFor((f) => f.frame.case === "event" && f.frame.value.seq === last, 20_000);
      readAgain(slow);
      expect((await slow.closed).code).toBe(4005);
      // 600 frames (9.6 MB) were sent: the kernel's buffers took some, the gateway's bound the rest.
      const seqs = slow.events(roomId).map((e) => Number(e.seq));
      expect(seqs.length).toBeLessThan(600);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => (seqs[0] ?? 0) + i)); // no gap before it
      expect(fast.events(roomId)).toHaveLength(Number(last)); // the others were not slowed: all, once each
      fast.close();
    } finally {
      await app.stop();
    }
  }, 60_000);

  it("closes the stream when the token expires (4003, reconnect)", async () => {
    // The token must still be valid when the hello is handled, and a token's expiry is a whole
    // second: on a machine too slow for a short one, the next token lives twice as long.
    for (let ttl = 2; ; ttl *= 2) {
      const d = await wsDevice(t.httpUrl, { case: "hello", value: { token: await token("short", "d", ttl) } });
      const first = await d.waitFor((f) => f.frame.case === "welcome" || f.frame.case === "disconnect");
      const expiredFirst = first.frame.case === "disconnect" && /expired/.test(first.frame.value.reason);
      if (expiredFirst && ttl < 64) continue;
      expect(first.frame.case).toBe("welcome");
      const closed = await d.closed;
      expect(closed.code).toBe(4003);
      expect(d.frames.find((f) => f.frame.case === "disconnect")?.frame.value).toMatchObject({ reconnect: true });
      return;
    }
  });
});

describe("presence", () => {
  it("is online while connected and last seen after, for people who share a room; away is sent live", async () => {
    await groupRoom(t, "pr-a", "pr-b");
    const b = await connect("pr-b");
    const a = await connect("pr-a");
    const { presence } = await t.as("pr-a").getPresence({ profileIds: ["pr-b", "stranger"] });
    expect(presence).toEqual([expect.objectContaining({ profileId: "pr-b", state: PresenceState.ONLINE })]);
    b.send({ frame: { case: "presence", value: { state: PresenceState.AWAY } } });
    const away = await a.waitFor((f) => f.frame.case === "presence");
    expect(away.frame.value).toMatchObject({ profileId: "pr-b", state: PresenceState.AWAY });
    b.close();
    await b.closed;
    const after = await until("pr-b to be offline", async () => {
      const { presence } = await t.as("pr-a").getPresence({ profileIds: ["pr-b"] });
      return presence[0]?.state === PresenceState.OFFLINE && presence[0];
    });
    expect(after.lastSeen).toBeDefined();
    await expect(t.as("pr-a").getPresence({ profileIds: [] })).rejects.toMatchObject({ code: Code.InvalidArgument });
    a.close();
  });
});

describe("shutdown", () => {
  it("tells every device to reconnect elsewhere (4007) and stops", async () => {
    const other = await startTestApp();
    const d = await wsDevice(other.httpUrl, {
      case: "hello",
      value: { token: await other.signer.sign({ sub: "sd", device_id: "d" }) },
    });
    await d.waitFor((f) => f.frame.case === "welcome");
    const stopping = other.stop();
    const closed = await d.closed;
    await stopping;
    expect(closed.code).toBe(4007);
    expect(d.frames.find((f) => f.frame.case === "disconnect")?.frame.value).toMatchObject({ reconnect: true });
  });
});

describe("connects of one device that race (MAX_CONNECTIONS_PER_DEVICE=1)", () => {
  // Two gateways sharing the Redis registry and the NATS live bus, as a cluster does: a replaced
  // connection on the other gateway is told over the bus.
  const apps: TestApp[] = [];
  beforeAll(async () => {
    const name = `race${process.pid}${Date.now()}`;
    for (let i = 0; i < 2; i++) {
      apps.push(
        await startTestApp({
          CACHE_URI: "redis://127.0.0.1:6379",
          QUEUE_USER_EVENT_DELIVERY_URI: "nats://127.0.0.1:4222",
          QUEUE_USER_EVENT_DELIVERY_NAME: name,
          GATEWAY_ID: `${name}-${i}`,
          DEV_SIGNER_KEY_FILE: `/tmp/${name}.jwk`,
        }),
      );
    }
  });
  afterAll(async () => {
    for (const a of apps) await a.stop();
  });

  it("leave exactly one connection open, every other replaced (4004)", async () => {
    const CONNECTS = 400;
    const hello = { token: await apps[0]!.signer.sign({ sub: "racer", device_id: "same" }) };
    const devices = await Promise.all(
      Array.from({ length: CONNECTS }, (_, i) => wsDevice(apps[i % 2]!.httpUrl, { case: "hello", value: hello })),
    );
    const codes = new Map<Device, number>();
    for (const d of devices) void d.closed.then(({ code }) => codes.set(d, code));
    // Every connection is either replaced or welcomed and still open, and only one is open.
    await until("all but one connection to be replaced", () => codes.size === CONNECTS - 1, { timeoutMs: 90_000 });
    const open = devices.filter((d) => !codes.has(d));
    expect(open).toHaveLength(1);
    expect([...codes.values()].every((c) => c === 4004)).toBe(true);
    const welcome = await open[0]!.waitFor((f) => f.frame.case === "welcome");
    // And it is the one the registry keeps: every replaced connection is gone from it, so none is
    // left to replace it later. It still answers a ping, after all of that.
    const left = await apps[0]!.app.registry.deviceConnections("racer", "same");
    expect(left.map((c) => c.connectionId)).toEqual([
      welcome.frame.case === "welcome" ? welcome.frame.value.sessionId : "",
    ]);
    open[0]!.send({ requestId: "still-open", frame: { case: "ping", value: {} } });
    await open[0]!.waitFor((f) => f.requestId === "still-open" && f.frame.case === "pong");
    expect(codes.size).toBe(CONNECTS - 1);
    open[0]!.close();
  });
});
