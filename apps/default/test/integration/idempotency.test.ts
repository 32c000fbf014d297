import {
  countRows,
  fullHistory,
  groupRoom,
  send,
  sendOk,
  startTestApp,
  type TestApp,
  text,
} from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

const ackOf = (a: { eventId: string; roomId: string; seq: bigint; clientId: string }) => ({
  eventId: a.eventId,
  roomId: a.roomId,
  seq: a.seq,
  clientId: a.clientId,
});

describe("client_id", () => {
  it("resending returns the original ack and stores nothing", async () => {
    const alice = t.as("idem-alice");
    const roomId = await groupRoom(t, "idem-alice", "idem-bob");
    const first = await sendOk(alice, text(roomId, "pay 10 EUR", { clientId: "pay-1" }));
    const other = await sendOk(alice, text(roomId, "something else", { clientId: "pay-2" }));
    const rows = await countRows(t, roomId);
    const again = await sendOk(alice, text(roomId, "pay 10 EUR", { clientId: "pay-1" }));
    const changed = await sendOk(alice, text(roomId, "pay 99 EUR", { clientId: "pay-1" }));
    expect(ackOf(again)).toEqual(ackOf(first));
    expect(ackOf(changed)).toEqual(ackOf(first));
    expect(first.clientId).toBe("pay-1");
    expect(await countRows(t, roomId)).toEqual(rows);
    const history = await fullHistory(t.as("idem-bob"), roomId);
    expect(history.slice(1).map((e) => [e.id, e.clientId, e.content.value])).toEqual([
      [first.eventId, "pay-1", expect.objectContaining({ body: "pay 10 EUR" })],
      [other.eventId, "pay-2", expect.objectContaining({ body: "something else" })],
    ]);
    const next = await sendOk(alice, text(roomId, "next"));
    expect(next.seq).toBe(other.seq + 1n);
  });

  it("repeated inside one call gives both events the same ack", async () => {
    const alice = t.as("dup-alice");
    const roomId = await groupRoom(t, "dup-alice");
    const rows = await countRows(t, roomId);
    const acks = await send(
      alice,
      text(roomId, "a", { clientId: "x" }),
      text(roomId, "b", { clientId: "y" }),
      text(roomId, "a", { clientId: "x" }),
      text(roomId, "c"),
    );
    expect(acks.map((a) => a.error)).toEqual([undefined, undefined, undefined, undefined]);
    expect(ackOf(acks[2]!)).toEqual(ackOf(acks[0]!));
    expect(acks.map((a) => a.seq)).toEqual([2n, 3n, 2n, 4n]);
    expect(await countRows(t, roomId)).toEqual({ events: rows.events + 3, outbox: rows.outbox + 3 });
    const resent = await send(alice, text(roomId, "a", { clientId: "x" }), text(roomId, "b", { clientId: "y" }));
    expect(resent.map(ackOf)).toEqual([ackOf(acks[0]!), ackOf(acks[1]!)]);
    expect(await countRows(t, roomId)).toEqual({ events: rows.events + 3, outbox: rows.outbox + 3 });
  });

  it("is per sender: another sender's same client_id is another event", async () => {
    const roomId = await groupRoom(t, "per-alice", "per-bob");
    const rows = await countRows(t, roomId);
    const a = await sendOk(t.as("per-alice"), text(roomId, "from alice", { clientId: "same" }));
    const b = await sendOk(t.as("per-bob"), text(roomId, "from bob", { clientId: "same" }));
    expect(b.eventId).not.toBe(a.eventId);
    expect(b.seq).toBe(a.seq + 1n);
    expect(await countRows(t, roomId)).toEqual({ events: rows.events + 2, outbox: rows.outbox + 2 });
    const history = await fullHistory(t.as("per-alice"), roomId);
    expect(history.slice(1).map((e) => [e.source?.profileId, e.clientId])).toEqual([
      ["per-alice", "same"],
      ["per-bob", "same"],
    ]);
  });

  it("is per room: the same client_id in another room is another event", async () => {
    const alice = t.as("room-alice");
    const r1 = await groupRoom(t, "room-alice");
    const r2 = await groupRoom(t, "room-alice");
    const r3 = await groupRoom(t, "room-alice");
    const rows = await countRows(t);
    const a = await sendOk(alice, text(r1, "one", { clientId: "k" }));
    const b = await sendOk(alice, text(r2, "two", { clientId: "k" }));
    const [c, d] = await send(alice, text(r3, "three", { clientId: "k" }), text(r1, "one", { clientId: "k" }));
    expect([a.roomId, b.roomId, c?.roomId]).toEqual([r1, r2, r3]);
    expect(new Set([a.eventId, b.eventId, c?.eventId]).size).toBe(3);
    expect(ackOf(d!)).toEqual(ackOf(a));
    expect(await countRows(t)).toEqual({ events: rows.events + 3, outbox: rows.outbox + 3 });
  });

  it("of a refused event can be used again", async () => {
    const alice = t.as("retry-alice");
    const roomId = await groupRoom(t, "retry-alice");
    const [refused] = await send(alice, text(roomId, "", { clientId: "r1" }));
    expect(refused?.error?.code).toBe("invalid_argument");
    expect(refused?.clientId).toBe("r1");
    const ok = await sendOk(alice, text(roomId, "fixed", { clientId: "r1" }));
    expect(ok.seq).toBe(2n);
    const again = await sendOk(alice, text(roomId, "fixed", { clientId: "r1" }));
    expect(ackOf(again)).toEqual(ackOf(ok));
  });

  it("holds when the same event is sent many times at once", async () => {
    const roomId = await groupRoom(t, "race-alice");
    const rows = await countRows(t, roomId);
    const acks = await Promise.all(
      Array.from({ length: 10 }, () => sendOk(t.as("race-alice"), text(roomId, "once", { clientId: "race" }))),
    );
    expect(new Set(acks.map((a) => a.eventId)).size).toBe(1);
    expect(acks.map((a) => a.seq)).toEqual(acks.map(() => 2n));
    expect(await countRows(t, roomId)).toEqual({ events: rows.events + 1, outbox: rows.outbox + 1 });
  });

  it("without client_id every send is a new event", async () => {
    const alice = t.as("none-alice");
    const roomId = await groupRoom(t, "none-alice");
    const a = await sendOk(alice, text(roomId, "same"));
    const b = await sendOk(alice, text(roomId, "same"));
    expect(b.eventId).not.toBe(a.eventId);
    expect([a.clientId, b.clientId]).toEqual(["", ""]);
    expect((await countRows(t, roomId)).events).toBe(3);
  });
});
