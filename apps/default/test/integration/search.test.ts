import { Code } from "@connectrpc/connect";
import { CallAction, RoomEventType, RoomType } from "@service-chat/api";
import {
  type EventInit,
  failsWith,
  groupRoom,
  react,
  redact,
  searchIds,
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

const file = (roomId: string, filename: string, caption: string): EventInit => ({
  roomId,
  type: RoomEventType.ATTACHMENT,
  content: {
    case: "attachment",
    value: { uri: `https://files.example/${filename}`, mimeType: "application/pdf", filename, caption },
  },
});

describe("SearchEvents", () => {
  it("finds words in text messages and in attachment captions and filenames", async () => {
    const alice = t.as("s1-alice");
    const roomId = await groupRoom(t, "s1-alice");
    const message = await sendOk(alice, text(roomId, "The Budget for Zürich is ready"));
    const caption = await sendOk(alice, file(roomId, "scan.pdf", "signed budget"));
    const named = await sendOk(alice, file(roomId, "budget-2024.pdf", ""));
    await send(
      alice,
      {
        roomId,
        type: RoomEventType.CALL,
        content: { case: "call", value: { callId: "budget", action: CallAction.OFFER, sdp: "budget" } },
      },
      react(roomId, message.eventId, "budget"),
      {
        roomId,
        type: RoomEventType.ENCRYPTED,
        content: { case: "encrypted", value: { algorithm: "budget", ciphertext: new Uint8Array([1]) } },
      },
    );
    expect(await searchIds(alice, "budget")).toEqual([named.eventId, caption.eventId, message.eventId]);
    expect(await searchIds(alice, "BUDGET zürich")).toEqual([message.eventId]);
    expect(await searchIds(alice, "budget-2024.pdf")).toEqual([named.eventId]);
    expect(await searchIds(alice, "signed")).toEqual([caption.eventId]);
    const { events } = await alice.searchEvents({ query: "zürich" });
    expect(events[0]).toMatchObject({ id: message.eventId, roomId, seq: message.seq, type: RoomEventType.TEXT });
    expect(events[0]?.content.value).toMatchObject({ body: "The Budget for Zürich is ready" });
  });

  it("searches only the rooms the caller is an active member of", async () => {
    const mine = await groupRoom(t, "s2-bob", "s2-alice");
    const theirs = await groupRoom(t, "s2-eve", "s2-bob");
    const { room } = await t.as("s2-eve").createRoom({ name: "public", type: RoomType.CHANNEL });
    const channel = room?.id as string;
    const a = await sendOk(t.as("s2-bob"), text(mine, "pelican in mine"));
    const b = await sendOk(t.as("s2-bob"), text(theirs, "pelican in theirs"));
    const c = await sendOk(t.as("s2-eve"), text(channel, "pelican in the channel"));
    expect(await searchIds(t.as("s2-alice"), "pelican")).toEqual([a.eventId]);
    expect(await searchIds(t.as("s2-bob"), "pelican")).toEqual([b.eventId, a.eventId]);
    expect(await searchIds(t.as("s2-eve"), "pelican")).toEqual([c.eventId, b.eventId]);
    expect(await searchIds(t.as("s2-nobody"), "pelican")).toEqual([]);

    await t.as("s2-alice").addRoomSubscriptions({ roomId: channel, members: [{ profileId: "s2-alice" }] });
    expect(await searchIds(t.as("s2-alice"), "pelican")).toEqual([c.eventId, a.eventId]);
    await t.as("s2-alice").removeRoomSubscriptions({ roomId: mine, profileIds: ["s2-alice"] });
    expect(await searchIds(t.as("s2-alice"), "pelican")).toEqual([c.eventId]);
    await t.as("s2-eve").removeRoomSubscriptions({ roomId: theirs, profileIds: ["s2-bob"] });
    expect(await searchIds(t.as("s2-bob"), "pelican")).toEqual([a.eventId]);
  });

  it("is restricted to room_id when given, and NotFound for rooms the caller is not in", async () => {
    const alice = t.as("s3-alice");
    const r1 = await groupRoom(t, "s3-alice");
    const r2 = await groupRoom(t, "s3-bob", "s3-alice");
    const secret = await groupRoom(t, "s3-eve");
    const [a1, a2] = await send(alice, text(r1, "koala one"), text(r1, "koala two"));
    const b = await sendOk(alice, text(r2, "koala three"));
    await sendOk(t.as("s3-eve"), text(secret, "koala secret"));
    expect(await searchIds(alice, "koala", r1)).toEqual([a2!.eventId, a1!.eventId]);
    expect(await searchIds(alice, "koala", r2)).toEqual([b.eventId]);
    expect(await searchIds(alice, "koala")).toEqual([b.eventId, a2!.eventId, a1!.eventId]);
    await failsWith(alice.searchEvents({ query: "koala", roomId: secret }), Code.NotFound);
    await failsWith(alice.searchEvents({ query: "koala", roomId: crypto.randomUUID() }), Code.NotFound);
    await t.as("s3-alice").removeRoomSubscriptions({ roomId: r2, profileIds: ["s3-alice"] });
    await failsWith(alice.searchEvents({ query: "koala", roomId: r2 }), Code.NotFound);
  });

  it("returns newest first and pages with a cursor", async () => {
    const alice = t.as("s4-alice");
    const r1 = await groupRoom(t, "s4-alice");
    const r2 = await groupRoom(t, "s4-alice");
    const ids: string[] = [];
    for (let round = 0; round < 3; round++) {
      const acks = await send(
        alice,
        ...Array.from({ length: 5 }, (_, i) => text(round === 1 ? r2 : r1, `otter ${round}.${i}`)),
      );
      ids.push(...acks.map((a) => a.eventId));
      await sendOk(alice, text(r1, "unrelated"));
    }
    const newestFirst = [...ids].reverse();
    expect(await searchIds(alice, "otter")).toEqual(newestFirst);
    for (const limit of [1, 4, 15]) expect(await searchIds(alice, "otter", "", limit)).toEqual(newestFirst);
    const first = await alice.searchEvents({ query: "otter", limit: 4 });
    expect(first.events.map((e) => e.content.value)).toEqual(
      ["2.4", "2.3", "2.2", "2.1"].map((n) => expect.objectContaining({ body: `otter ${n}` })),
    );
    expect(first.nextCursor).not.toBe("");
    const last = await alice.searchEvents({ query: "otter", limit: 15 });
    expect([last.events.length, last.nextCursor]).toEqual([15, ""]);
    expect(await searchIds(alice, "otter", r1, 3)).toEqual(newestFirst.filter((_, i) => i < 5 || i >= 10));
  });

  it("understands websearch syntax: quoted phrases, -excluded words, or", async () => {
    const alice = t.as("s5-alice");
    const roomId = await groupRoom(t, "s5-alice");
    const [redApple, appleRed, greenApple, pear] = await send(
      alice,
      text(roomId, "a red apple today"),
      text(roomId, "the apple is red"),
      text(roomId, "green apple, red pear"),
      text(roomId, "just a pear"),
    );
    const id = (a: typeof redApple) => a?.eventId as string;
    expect(await searchIds(alice, '"red apple"')).toEqual([id(redApple)]);
    expect(await searchIds(alice, "red apple")).toEqual([id(greenApple), id(appleRed), id(redApple)]);
    expect(await searchIds(alice, "apple -green")).toEqual([id(appleRed), id(redApple)]);
    expect(await searchIds(alice, "apple -red")).toEqual([]);
    expect(await searchIds(alice, "today or pear")).toEqual([id(pear), id(greenApple), id(redApple)]);
    expect(await searchIds(alice, "apples")).toEqual([]);
  });

  it("does not find redacted messages", async () => {
    const alice = t.as("s6-alice");
    const roomId = await groupRoom(t, "s6-alice", "s6-bob");
    const [keep, gone, file1] = await send(
      alice,
      text(roomId, "mango kept"),
      text(roomId, "mango gone"),
      file(roomId, "mango.pdf", "mango caption"),
    );
    expect(await searchIds(t.as("s6-bob"), "mango")).toHaveLength(3);
    await send(alice, redact(roomId, gone!.eventId), redact(roomId, file1!.eventId));
    expect(await searchIds(t.as("s6-bob"), "mango")).toEqual([keep?.eventId]);
    expect(await searchIds(t.as("s6-bob"), "gone")).toEqual([]);
    expect(await searchIds(t.as("s6-bob"), "caption")).toEqual([]);
  });

  it("does not search deleted rooms", async () => {
    const alice = t.as("s7-alice");
    const roomId = await groupRoom(t, "s7-alice");
    await sendOk(alice, text(roomId, "ephemeral lemur"));
    expect(await searchIds(alice, "lemur")).toHaveLength(1);
    await alice.deleteRoom({ roomId });
    expect(await searchIds(alice, "lemur")).toEqual([]);
  });
});
