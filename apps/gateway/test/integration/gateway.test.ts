import { RoomEventType } from "@service-chat/api";
import { groupRoom, grpcDevice, startTestApp, type TestApp, text, wsDevice } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The default heartbeat and timeout: devices that say nothing for a while, as test devices do on
// a loaded machine, are not closed for it (the silence test runs a service of its own).
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

const token = (sub: string, device_id?: string) => t.signer.sign({ sub, ...(device_id ? { device_id } : {}) });
describe("device streams", () => {
  it("welcome, replay of what was missed, then live; browser (WebSocket) and native (HTTP/2) devices in one room", async () => {
    const roomId = await groupRoom(t, "wa", "wb");
    await t.as("wa").sendEvent({ event: [text(roomId, "while you were away")] });
    const browser = await wsDevice(
      t.httpUrl,
      { case: "hello", value: { token: await token("wb", "browser") } },
      { json: true },
    );
    const native = await grpcDevice(t.grpcUrl, await token("wa", "phone"), { case: "hello", value: {} });
    await browser.waitFor((f) => f.frame.case === "welcome");
    await native.waitFor((f) => f.frame.case === "welcome");
    // Replay: the browser gets the creation and the message it missed.
    await browser.waitFor((f) => f.frame.case === "event" && f.frame.value.seq === 2n);
    // Live both ways: native sends over its stream, the browser sees it; and back.
    native.send({ requestId: "n1", frame: { case: "send", value: text(roomId, "from the phone") } });
    const ack = await native.waitFor((f) => f.requestId === "n1");
    expect(ack.frame.case).toBe("ack");
    await browser.waitFor((f) => f.frame.case === "event" && f.frame.value.seq === 3n);
    browser.send({ requestId: "b1", frame: { case: "send", value: text(roomId, "from the browser") } });
    await native.waitFor((f) => f.frame.case === "event" && f.frame.value.seq === 4n);
    await browser.waitFor((f) => f.frame.case === "event" && f.frame.value.seq === 4n);
    expect(browser.events(roomId).map((e) => Number(e.seq))).toEqual([1, 2, 3, 4]);
    browser.close();
    native.close();
  });

  it("a member removed and added again gets the event that added them and everything after it, live and on resume", async () => {
    const roomId = await groupRoom(t, "ra", "rb");
    const bob = await wsDevice(t.httpUrl, { case: "hello", value: { token: await token("rb", "rb-phone") } });
    await bob.waitFor((f) => f.frame.case === "synced");
    await t.as("ra").removeRoomSubscriptions({ roomId, profileIds: ["rb"] }); // seq 2
    await bob.waitFor((f) => f.frame.case === "event" && f.frame.value.seq === 2n);
    await t.as("ra").sendEvent({ event: [text(roomId, "not for bob 1")] }); // 3
    await t.as("ra").sendEvent({ event: [text(roomId, "not for bob 2")] }); // 4
    await t.as("ra").addRoomSubscriptions({ roomId, members: [{ profileId: "rb" }] }); // 5
    await t.as("ra").sendEvent({ event: [text(roomId, "for bob again")] }); // 6
    await bob.waitFor((f) => f.frame.case === "event" && f.frame.value.seq === 6n);
    // The device is told where the room continues, and sees nothing of the time it was out.
    expect(bob.frames.some((f) => f.frame.case === "resync" && f.frame.value.fromSeq === 5n)).toBe(true);
    expect(bob.events(roomId).map((e) => Number(e.seq))).toEqual([1, 2, 5, 6]);
    bob.close();

    // A device of bob's that was last here before the removal resumes the same way.
    const tablet = await wsDevice(t.httpUrl, {
      case: "hello",
      value: { token: await token("rb", "rb-tablet"), cursors: [{ roomId, seq: 1n }] },
    });
    await tablet.waitFor((f) => f.frame.case === "synced");
    expect(tablet.events(roomId).map((e) => Number(e.seq))).toEqual([5, 6]);
    expect(tablet.frames.some((f) => f.frame.case === "resync" && f.frame.value.fromSeq === 5n)).toBe(true);
    tablet.close();
  });

  it("pipelines a device's sends: 90 frames without waiting (within its rate), acked in order, stored in the order sent", async () => {
    const [a, b] = [await groupRoom(t, "pa", "pb"), await groupRoom(t, "pa", "pb")];
    const sender = await wsDevice(t.httpUrl, { case: "hello", value: { token: await token("pa", "fast") } });
    const reader = await wsDevice(t.httpUrl, { case: "hello", value: { token: await token("pb", "reader") } });
    await sender.waitFor((f) => f.frame.case === "synced");
    await reader.waitFor((f) => f.frame.case === "synced");
    const rooms = (i: number) => (i % 3 === 0 ? b : a);
    for (let i = 0; i < 90; i++) {
      sender.send({
        requestId: `s${i}`,
        frame: { case: "send", value: { ...text(rooms(i), `m${i}`), clientId: `c${i}` } },
      });
    }
    await sender.waitFor((f) => f.requestId === "s89");
    const acks = sender.frames.filter((f) => f.requestId.startsWith("s"));
    expect(acks.map((f) => f.requestId)).toEqual(Array.from({ length: 90 }, (_, i) => `s${i}`));
    expect(acks.every((f) => f.frame.case === "ack" && !f.frame.value.error)).toBe(true);
    // In each room, seqs follow the order of the frames: 2, 3, 4, … after the room's creation.
    for (const room of [a, b]) {
      const sent = acks.flatMap((f, i) => (rooms(i) === room && f.frame.case === "ack" ? [f.frame.value] : []));
      expect(sent.map((ack) => Number(ack.seq))).toEqual(sent.map((_, n) => n + 2));
      const last = Number(sent[sent.length - 1]?.seq);
      await reader.waitFor(
        (f) => f.frame.case === "event" && f.frame.value.roomId === room && f.frame.value.seq === BigInt(last),
      );
      const shown = reader.events(room).filter((e) => e.content.case === "text");
      expect(shown.map((e) => (e.content.value as { body: string }).body)).toEqual(
        Array.from({ length: 90 }, (_, i) => i)
          .filter((i) => rooms(i) === room)
          .map((i) => `m${i}`),
      );
    }
    sender.close();
    reader.close();
  });

  it("answers ping with pong", async () => {
    const d = await wsDevice(t.httpUrl, { case: "hello", value: { token: await token("pinger", "d1") } });
    await d.waitFor((f) => f.frame.case === "welcome");
    d.send({ requestId: "p1", frame: { case: "ping", value: {} } });
    expect((await d.waitFor((f) => f.requestId === "p1")).frame.case).toBe("pong");
    d.close();
  });

  it("answers a device's ping without a request id with a pong, in binary and in JSON, in order with other frames", async () => {
    for (const json of [false, true]) {
      const d = await wsDevice(
        t.httpUrl,
        { case: "hello", value: { token: await token("pinger", `idle-${json}`) } },
        { json },
      );
      await d.waitFor((f) => f.frame.case === "synced");
      const before = d.frames.length;
      d.send({ frame: { case: "ping", value: {} } });
      d.send({ requestId: "after", frame: { case: "ping", value: {} } });
      await d.waitFor((f) => f.requestId === "after");
      const answers = d.frames.slice(before).map((f) => [f.frame.case, f.requestId]);
      expect(answers).toEqual([
        ["pong", ""],
        ["pong", "after"],
      ]);
      d.close();
    }
  });
});

describe("disconnects", () => {
  it("closes a connection whose first frame is not hello with bad frame (4001, no reconnect)", async () => {
    const d = await wsDevice(t.httpUrl, { case: "ping", value: {} });
    const closed = await d.closed;
    expect(closed.code).toBe(4001);
    const frame = await d.waitFor((f) => f.frame.case === "disconnect");
    expect(frame.frame.value).toMatchObject({ code: 4001, reconnect: false });
  });

  it("refuses a bad token with authentication failed (4002)", async () => {
    const d = await wsDevice(t.httpUrl, { case: "hello", value: { token: "nope", deviceId: "x" } });
    expect((await d.closed).code).toBe(4002);
  });

  it("replaces the older connection of the same device (4004)", async () => {
    const first = await wsDevice(t.httpUrl, { case: "hello", value: { token: await token("twin", "tab") } });
    await first.waitFor((f) => f.frame.case === "welcome");
    const second = await wsDevice(t.httpUrl, { case: "hello", value: { token: await token("twin", "tab") } });
    await second.waitFor((f) => f.frame.case === "welcome");
    expect((await first.closed).code).toBe(4004);
    second.close();
  });

  it("sends heartbeats, and closes a connection silent for longer than the timeout (4008)", async () => {
    const quick = await startTestApp({ HEARTBEAT_INTERVAL_SEC: "0.5", CONNECTION_TIMEOUT_SEC: "2" });
    try {
      const quiet = await quick.signer.sign({ sub: "quiet", device_id: "d" });
      const d = await wsDevice(quick.httpUrl, { case: "hello", value: { token: quiet } });
      await d.waitFor((f) => f.frame.case === "welcome");
      await d.waitFor((f) => f.frame.case === "pong" && f.requestId === "");
      expect((await d.closed).code).toBe(4008);
    } finally {
      await quick.stop();
    }
  });

  it("answers a malformed frame with an error and goes on", async () => {
    const d = await wsDevice(t.httpUrl, { case: "hello", value: { token: await token("messy", "d") } });
    await d.waitFor((f) => f.frame.case === "welcome");
    d.raw(Buffer.from([0xff, 0xff, 0xff, 0x01]));
    const error = await d.waitFor((f) => f.frame.case === "error");
    expect(error.frame.value).toMatchObject({ code: "invalid_argument" });
    d.send({ requestId: "still-here", frame: { case: "ping", value: {} } });
    await d.waitFor((f) => f.requestId === "still-here");
    d.close();
  });

  it("answers a frame it cannot act on with an error naming the problem", async () => {
    const roomId = await groupRoom(t, "fa");
    const d = await wsDevice(t.httpUrl, { case: "hello", value: { token: await token("fa", "d") } });
    await d.waitFor((f) => f.frame.case === "welcome");
    d.send({ requestId: "bad-send", frame: { case: "send", value: { roomId, type: RoomEventType.TEXT } } });
    // A refused event is answered like SendEvent answers it: an ack carrying the error.
    const ack = await d.waitFor((f) => f.requestId === "bad-send");
    expect(ack.frame).toMatchObject({ case: "ack", value: { error: { code: "invalid_argument" } } });
    expect(ack.frame.case === "ack" && ack.frame.value.error?.message).toMatch(/event\[0\]\.content/);
    d.send({ requestId: "again", frame: { case: "hello", value: {} } });
    expect((await d.waitFor((f) => f.requestId === "again")).frame.value).toMatchObject({
      code: "failed_precondition",
    });
    d.close();
  });
});
