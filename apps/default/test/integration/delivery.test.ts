import { randomBytes } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { type RoomEvent, RoomEventSchema, type ServerFrame } from "@service-chat/api";
import { RoomSequencer } from "@service-chat/protocol";
import { edit, groupRoom, sendOk, startTestApp, type TestApp, text, until } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tapDeliveries } from "./pipeline-helpers.js";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({
    QUEUE_USER_EVENT_DELIVERY_NAME: `d${randomBytes(4).toString("hex")}`,
    SYNC_MAX_BACKLOG: "1000",
  });
});
afterAll(() => t.stop());

/** Every live frame published for a user, decoded. */
async function listen(user: string) {
  const frames: ServerFrame[] = [];
  const off = await tapDeliveries(t.app.live, (to, frame) => to === user && frames.push(frame));
  const events = (roomId: string) =>
    frames.flatMap((f) => (f.frame.case === "event" && f.frame.value.roomId === roomId ? [f.frame.value] : []));
  return { frames, events, off };
}

describe("live delivery", () => {
  it("follows membership: a new member gets events from the one that added them, a removed one up to their removal", async () => {
    const roomId = await groupRoom(t, "ann", "ben");
    const cid = await listen("cid");
    await t.as("ann").sendEvent({ event: [text(roomId, "before cid")] });
    await t.as("ann").addRoomSubscriptions({ roomId, members: [{ profileId: "cid" }] });
    await t.as("ann").sendEvent({ event: [text(roomId, "cid is here")] });
    await t.as("ann").removeRoomSubscriptions({ roomId, profileIds: ["cid"] });
    await t.as("ann").sendEvent({ event: [text(roomId, "cid left")] });
    const ben = await listen("ben");
    await t.as("ann").sendEvent({ event: [text(roomId, "marker")] });
    // Everything before the marker has been fanned out once ben has it (one ordered partition).
    await until("the marker", () => ben.events(roomId).some((e) => Number(e.seq) === 7));
    expect(cid.events(roomId).map((e) => [Number(e.seq), e.content.case])).toEqual([
      [3, "system"], // added
      [4, "text"],
      [5, "system"], // removed
    ]);
    await cid.off();
    await ben.off();
  });

  it("sends typing to the other members only and stores nothing", async () => {
    const roomId = await groupRoom(t, "dee", "eve");
    const eve = await listen("eve");
    const dee = await listen("dee");
    const outsider = await listen("fay");
    await t.as("dee").sendTyping({ roomId, active: true });
    await until("typing", () => eve.frames.some((f) => f.frame.case === "typing"));
    expect(eve.frames.find((f) => f.frame.case === "typing")?.frame.value).toMatchObject({
      roomId,
      active: true,
      profileId: "dee",
    });
    const { events } = await t.as("dee").getHistory({ roomId });
    expect(events).toHaveLength(1); // only the creation
    await expect(t.as("fay").sendTyping({ roomId, active: true })).rejects.toMatchObject({ code: Code.NotFound });
    // Later signals, published after those: once they are in, whatever dee or fay wrongly got is in too.
    const elsewhere = await groupRoom(t, "eve", "fay");
    await t.as("eve").sendTyping({ roomId, active: false });
    await t.as("eve").sendTyping({ roomId: elsewhere, active: true });
    await until("eve's typing at dee", () => dee.frames.some((f) => f.frame.case === "typing"));
    await until("eve's typing at fay", () => outsider.frames.some((f) => f.frame.case === "typing"));
    expect(dee.frames.filter((f) => f.frame.case === "typing").map((f) => f.frame.value)).toEqual([
      expect.objectContaining({ roomId, profileId: "eve", active: false }),
    ]);
    expect(outsider.frames.filter((f) => f.frame.case === "typing").map((f) => f.frame.value)).toEqual([
      expect.objectContaining({ roomId: elsewhere, profileId: "eve", active: true }),
    ]);
    expect(outsider.frames.filter((f) => (f.frame.value as { roomId?: string }).roomId === roomId)).toEqual([]);
    for (const l of [eve, dee, outsider]) await l.off();
  });
});

describe("read markers", () => {
  it("move forward only, give unread counts, and reach the other members as receipts", async () => {
    const roomId = await groupRoom(t, "gus", "hal");
    await t.as("gus").sendEvent({ event: [1, 2, 3, 4].map((i) => text(roomId, `m${i}`)) });
    const gus = await listen("gus");
    const hal = t.as("hal");
    expect(await hal.markRead({ roomId, seq: 3n })).toMatchObject({ readSeq: 3n, unreadCount: 2n });
    expect(await hal.markRead({ roomId, seq: 2n })).toMatchObject({ readSeq: 3n, unreadCount: 2n });
    await until("a receipt", () => gus.frames.some((f) => f.frame.case === "receipt"));
    expect(gus.frames.find((f) => f.frame.case === "receipt")?.frame.value).toMatchObject({
      roomId,
      profileId: "hal",
      readSeq: 3n,
    });
    expect((await hal.getRoom({ roomId })).room).toMatchObject({ readSeq: 3n, unreadCount: 2n });
    // What you send, you have read.
    expect((await t.as("gus").searchRooms({ query: "" })).rooms.find((r) => r.id === roomId)).toMatchObject({
      unreadCount: 0n,
    });
    await expect(hal.markRead({ roomId, seq: 99n })).rejects.toMatchObject({ code: Code.InvalidArgument });
    await expect(t.as("ivy").markRead({ roomId, seq: 1n })).rejects.toMatchObject({ code: Code.NotFound });
    await gus.off();
  });
});

describe("cursors and sync", () => {
  it("catches a device up on exactly what it missed, then joins live with no gap and no duplicate", async () => {
    const roomId = await groupRoom(t, "jon", "kim");
    const phone = t.as("kim", "connect", { device_id: "phone" });
    await phone.ackEvents({ acks: [{ roomId, seq: 1n }] });
    // Offline: 1,000 messages.
    for (let i = 0; i < 10; i++) {
      await t.as("jon").sendEvent({ event: Array.from({ length: 100 }, (_, k) => text(roomId, `m${i * 100 + k}`)) });
    }
    // Back online: subscribe first (buffer), then Sync page by page, while new messages keep coming.
    const live = await listen("kim");
    const seq = new RoomSequencer([[roomId, 1]]);
    const shown: number[] = [];
    const show = (e: RoomEvent) => {
      if (seq.offer(e.roomId, Number(e.seq)) === "deliver") shown.push(Number(e.seq));
    };
    let sending = true;
    let extra = 0;
    let sender: Promise<void> | undefined;
    let synced = 0;
    for (;;) {
      const page = await phone.sync({ limit: 150, cursors: [{ roomId, seq: BigInt(seq.position(roomId) ?? 0) }] });
      expect(page.resync).toEqual([]);
      for (const e of page.events) show(e);
      synced += page.events.length;
      sender ??= (async () => {
        while (sending || extra < 20) await t.as("jon").sendEvent({ event: [text(roomId, `live ${extra++}`)] });
      })();
      if (!page.hasMore) break;
    }
    expect(synced).toBeGreaterThanOrEqual(1000);
    sending = false;
    await sender;
    // Then live: whatever arrived meanwhile, and everything after, in order; a gap is filled by Sync.
    const lastSeq = 2 + 999 + extra;
    await until("live events", async () => {
      for (const e of live.events(roomId)) {
        let verdict = seq.offer(e.roomId, Number(e.seq));
        if (verdict === "gap") {
          const page = await phone.sync({ cursors: [{ roomId, seq: BigInt(seq.position(roomId) ?? 0) }] });
          for (const x of page.events) show(x);
          verdict = seq.offer(e.roomId, Number(e.seq));
        }
        if (verdict === "deliver") shown.push(Number(e.seq));
      }
      live.frames.length = 0;
      return seq.position(roomId) === lastSeq;
    });
    expect(shown).toEqual(Array.from({ length: lastSeq - 1 }, (_, i) => i + 2));
    await live.off();
  });

  it("starts a member's cursor at the join and uses the device's acknowledged cursor when none is given", async () => {
    const roomId = await groupRoom(t, "lea");
    await t.as("lea").sendEvent({ event: [text(roomId, "before max")] });
    await t.as("lea").addRoomSubscriptions({ roomId, members: [{ profileId: "max" }] });
    await t.as("lea").sendEvent({ event: [text(roomId, "hello max")] });
    const max = t.as("max", "connect", { device_id: "tablet" });
    const first = await max.sync({});
    expect(first.events.map((e) => Number(e.seq))).toEqual([3, 4]);
    await max.ackEvents({ acks: [{ roomId, seq: 4n }] });
    await max.ackEvents({ acks: [{ roomId, seq: 3n }] }); // never backwards
    await t.as("lea").sendEvent({ event: [text(roomId, "again")] });
    const second = await max.sync({});
    expect(second.events.map((e) => Number(e.seq))).toEqual([5]);
    expect(second.cursors).toEqual([expect.objectContaining({ roomId, seq: 5n })]);
  });

  it("says resync, naming where replay starts, when a device is further behind than the bound", async () => {
    const roomId = await groupRoom(t, "ned", "ola");
    for (let i = 0; i < 11; i++) {
      await t.as("ned").sendEvent({ event: Array.from({ length: 100 }, (_, k) => text(roomId, `m${k}`)) });
    }
    const page = await t.as("ola", "connect", { device_id: "old-phone" }).sync({ limit: 10 });
    // 1,101 events; the bound is 1,000: replay starts at 102, and the answer says so.
    expect(page.resync).toEqual([expect.objectContaining({ roomId, fromSeq: 102n, lastSeq: 1101n })]);
    expect(page.events.map((e) => Number(e.seq))).toEqual(Array.from({ length: 10 }, (_, i) => i + 102));
    expect(page.hasMore).toBe(true);
  });

  it("answers many devices syncing at once, in rooms they share, each with exactly what it missed", async () => {
    // 30 users in 6 rooms of 10 that overlap by half: each user in two rooms; 12 events per room.
    const users = Array.from({ length: 30 }, (_, i) => `storm${i}`);
    const rooms: { id: string; members: string[] }[] = [];
    for (let r = 0; r < 6; r++) {
      const members = Array.from({ length: 10 }, (_, k) => users[(r * 5 + k) % 30] as string);
      rooms.push({ id: await groupRoom(t, members[0] as string, ...members.slice(1)), members });
    }
    const lastSeq = new Map<string, number>();
    for (const room of rooms) {
      const { ack } = await t.as(room.members[0] as string).sendEvent({
        event: Array.from({ length: 12 }, (_, k) => text(room.id, `m${k}`)),
      });
      lastSeq.set(room.id, Number(ack.at(-1)?.seq));
    }
    // Each device gives a position of its own in each of its rooms (0 to 4).
    const mine = (u: string) => rooms.filter((r) => r.members.includes(u)).sort((a, b) => (a.id < b.id ? -1 : 1));
    const position = (u: number, r: number) => (u + r) % 5;
    const pages = await Promise.all(
      users.map((u, i) =>
        t.as(u, "connect", { device_id: "phone" }).sync({
          cursors: mine(u).map((r, k) => ({ roomId: r.id, seq: BigInt(position(i, k)) })),
        }),
      ),
    );
    pages.forEach((page, i) => {
      const u = users[i] as string;
      expect(page.hasMore).toBe(false);
      // Per room: every seq after the position given, up to the room's last, in order, once.
      for (const [k, r] of mine(u).entries()) {
        const got = page.events.filter((e) => e.roomId === r.id).map((e) => Number(e.seq));
        const last = lastSeq.get(r.id) as number;
        expect(got).toEqual(Array.from({ length: last - position(i, k) }, (_, n) => position(i, k) + 1 + n));
      }
      // Rooms in the page in room order.
      const order = [...new Set(page.events.map((e) => e.roomId))];
      expect(order).toEqual(mine(u).map((r) => r.id));
    });
  });

  it("answers SyncDevices for each device what its own Sync answers, errors included", async () => {
    const roomId = await groupRoom(t, "sd-ann", "sd-ben");
    const [one] = (await t.as("sd-ann").sendEvent({ event: [text(roomId, "one"), text(roomId, "two")] })).ack;
    const token = (sub: string, device_id = "phone") => t.signer.sign({ sub, device_id });
    const expired = await t.signer.sign({ sub: "sd-ben", device_id: "phone", ttl_s: -10 });
    const requests = [
      { token: await token("sd-ben"), request: { cursors: [{ roomId, seq: 1n }] } },
      { token: await token("sd-ann", "laptop"), request: {} },
      { token: await token("sd-nobody"), request: {} },
      { token: expired, request: {} },
      { token: "", request: {} },
      { token: await token("sd-ben"), request: { limit: 1001 } },
    ];
    await expect(t.withToken(undefined).syncDevices({ devices: requests })).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
    const answer = await t.as("sd-gateway").syncDevices({ devices: requests });
    const { devices } = answer;
    // Each page as its own Sync's: the events from the shared list, by position.
    const page = (i: number) => {
      const d = devices[i];
      if (d?.result.case !== "response") return d?.result;
      return { ...d.result.value, events: d.eventIndexes.map((n) => answer.events[n]) };
    };
    const own = await t.as("sd-ben", "connect", { device_id: "phone" }).sync({ cursors: [{ roomId, seq: 1n }] });
    expect(page(0)).toEqual(own);
    expect(own.events.map((e) => e.content.case === "text" && e.content.value.body)).toEqual(["one", "two"]);
    const ann = await t.as("sd-ann", "connect", { device_id: "laptop" }).sync({});
    expect(ann.events.map((e) => Number(e.seq))).toEqual([1, 2, 3]);
    expect(page(1)).toEqual(ann);
    // Read together, the events both pages show are sent once.
    expect(answer.events.map((e) => Number(e.seq)).sort()).toEqual([1, 2, 3]);
    expect(page(2)).toMatchObject({ events: [], cursors: [] });
    expect(devices.slice(3).map((d) => d.result.case === "error" && d.result.value.code)).toEqual([
      "unauthenticated",
      "unauthenticated",
      "invalid_argument",
    ]);
    // In binary (encoded_events), the same pages; an event edited since is answered as it is now.
    const encoded = async () => {
      const a = await t.as("sd-gateway").syncDevices({ devices: requests.slice(0, 1), encodedEvents: true });
      expect(a.events).toEqual([]);
      const d = a.devices[0];
      if (d?.result.case !== "response") throw new Error(`no page: ${d?.result.case}`);
      const events = d.eventIndexes.map((n) => fromBinary(RoomEventSchema, a.encodedEvents[n] as Uint8Array));
      return { ...d.result.value, events };
    };
    expect(await encoded()).toEqual(own);
    expect(await encoded()).toEqual(own);
    await sendOk(t.as("sd-ann"), edit(roomId, one?.eventId as string, "one, edited"));
    const edited = await t.as("sd-ben", "connect", { device_id: "phone" }).sync({ cursors: [{ roomId, seq: 1n }] });
    expect(edited.events[0]).toMatchObject({ edited: true, content: { value: { body: "one, edited" } } });
    expect((await encoded()).events.slice(0, 2)).toEqual(edited.events.slice(0, 2));
    await expect(
      t.as("sd-gateway").syncDevices({ devices: Array.from({ length: 501 }, () => requests[1]!) }),
    ).rejects.toMatchObject({ code: Code.InvalidArgument });
  });

  it("refuses bad cursors and acks with errors naming the field", async () => {
    const roomId = await groupRoom(t, "pam");
    const pam = t.as("pam", "connect", { device_id: "d" });
    const bad = [
      [() => pam.ackEvents({ acks: [] }), /acks/],
      [() => pam.ackEvents({ acks: [{ roomId, seq: 9n }] }), /acks\[0\]\.seq/],
      [() => pam.ackEvents({ acks: [{ roomId: "x", seq: 1n }] }), /acks\[0\]\.room_id/],
      [() => t.as("pam").ackEvents({ acks: [{ roomId, seq: 1n }] }), /device_id/],
      [() => pam.ackEvents({ acks: [{ roomId, seq: 1n }], deviceId: "other" }), /device_id/],
      [() => pam.sync({ limit: 1001 }), /limit/],
      [() => pam.sync({ cursors: [{ roomId, seq: -1n }] }), /cursors\[0\]\.seq/],
    ] as const;
    for (const [call, message] of bad) {
      await expect(call()).rejects.toMatchObject({
        code: Code.InvalidArgument,
        rawMessage: expect.stringMatching(message),
      });
    }
    const other = await groupRoom(t, "quinn");
    await expect(pam.ackEvents({ acks: [{ roomId: other, seq: 1n }] })).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
  });
});

it("exposes pipeline metrics at /metrics", async () => {
  const scrape = async () => (await fetch(`${t.httpUrl}/metrics`)).text();
  const body = await scrape();
  expect(body).toContain("chat_outbox_published_events_total");
  expect(body).toContain("chat_fanout_deliveries_total");
  expect(body).toContain("chat_outbox_backlog");
  expect(body).toMatch(/chat_stream_lag\{partition="0"[^}]*\} \d+/);
  // The earlier tests' last entries may still be in fan-out's hands: the lag drains to 0.
  await until("partition 0's lag back to 0", async () =>
    /chat_stream_lag\{partition="0"[^}]*\} 0\n/.test(await scrape()),
  );
});
