import { RoomEventType } from "@service-chat/api";
import {
  countRows,
  edit,
  eventById,
  groupRoom,
  react,
  redact,
  searchIds,
  send,
  sendOk,
  sendRefused,
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

const attachment = (roomId: string) => ({
  roomId,
  type: RoomEventType.ATTACHMENT,
  content: {
    case: "attachment" as const,
    value: {
      uri: "https://files.example/report.pdf",
      mimeType: "application/pdf",
      filename: "report.pdf",
      caption: "zebra",
    },
  },
});

describe("edits", () => {
  it("replace the text of the target in history and in search", async () => {
    const alice = t.as("ed-alice");
    const roomId = await groupRoom(t, "ed-alice", "ed-bob");
    const target = await sendOk(alice, text(roomId, "meet at gorilla bridge"));
    expect(await searchIds(alice, "gorilla")).toEqual([target.eventId]);
    const e1 = await sendOk(alice, edit(roomId, target.eventId, "meet at panther bridge"));
    const e2 = await sendOk(alice, edit(roomId, target.eventId, "meet at panther gate"));
    const bob = t.as("ed-bob");
    const shown = await eventById(bob, roomId, target.eventId);
    expect(shown).toMatchObject({ edited: true, redacted: false, seq: target.seq, type: RoomEventType.TEXT });
    expect(shown.content).toMatchObject({ case: "text", value: { body: "meet at panther gate" } });
    expect((await eventById(bob, roomId, e1.eventId)).content).toMatchObject({
      case: "edit",
      value: { targetEventId: target.eventId, text: { body: "meet at panther bridge" } },
    });
    expect(e2.seq).toBe(e1.seq + 1n);
    expect(await searchIds(bob, "gorilla")).toEqual([]);
    expect(await searchIds(bob, "bridge")).toEqual([]);
    expect(await searchIds(bob, "panther")).toEqual([target.eventId]);
  });

  it("are only allowed to the sender", async () => {
    const roomId = await groupRoom(t, "eds-alice", "eds-bob");
    await t.as("eds-alice").addRoomSubscriptions({ roomId, members: [{ profileId: "eds-mod", role: "moderator" }] });
    const target = await sendOk(t.as("eds-bob"), text(roomId, "bob's words"));
    const before = await countRows(t, roomId);
    const field = "event[0].edit.target_event_id";
    await sendRefused(t.as("eds-alice"), edit(roomId, target.eventId, "owner's words"), "permission_denied", field);
    await sendRefused(t.as("eds-mod"), edit(roomId, target.eventId, "mod's words"), "permission_denied", field);
    expect(await countRows(t, roomId)).toEqual(before);
    const shown = await eventById(t.as("eds-bob"), roomId, target.eventId);
    expect(shown).toMatchObject({ edited: false, content: { value: { body: "bob's words" } } });
  });

  it("only target text messages of the same room", async () => {
    const alice = t.as("edt-alice");
    const roomId = await groupRoom(t, "edt-alice");
    const otherRoom = await groupRoom(t, "edt-alice");
    const file = await sendOk(alice, attachment(roomId));
    const message = await sendOk(alice, text(roomId, "original"));
    const anEdit = await sendOk(alice, edit(roomId, message.eventId, "changed"));
    const reaction = await sendOk(alice, react(roomId, message.eventId));
    const elsewhere = await sendOk(alice, text(otherRoom, "other room"));
    const before = await countRows(t);
    const field = "event[0].edit.target_event_id";
    for (const target of [file, anEdit, reaction]) {
      await sendRefused(alice, edit(roomId, target.eventId, "new"), "invalid_argument", field);
    }
    await sendRefused(alice, edit(roomId, elsewhere.eventId, "new"), "invalid_argument", field);
    await sendRefused(alice, edit(roomId, crypto.randomUUID(), "new"), "invalid_argument", field);
    expect(await countRows(t)).toEqual(before);
    expect((await eventById(alice, otherRoom, elsewhere.eventId)).content.value).toMatchObject({ body: "other room" });
    expect((await eventById(alice, roomId, file.eventId)).edited).toBe(false);
  });

  it("of a redacted message are refused", async () => {
    const alice = t.as("edr-alice");
    const roomId = await groupRoom(t, "edr-alice");
    const target = await sendOk(alice, text(roomId, "soon gone"));
    await sendOk(alice, redact(roomId, target.eventId));
    await sendRefused(
      alice,
      edit(roomId, target.eventId, "back again"),
      "failed_precondition",
      "event[0].edit.target_event_id",
    );
    expect(await eventById(alice, roomId, target.eventId)).toMatchObject({
      redacted: true,
      content: { value: { body: "" } },
    });
  });
});

describe("redactions", () => {
  it("empty the target, keep its place in history and hide it from search", async () => {
    const alice = t.as("rd-alice");
    const roomId = await groupRoom(t, "rd-alice", "rd-bob");
    const message = await sendOk(alice, text(roomId, "my secret is walrus"));
    const file = await sendOk(alice, attachment(roomId));
    expect(await searchIds(alice, "walrus")).toEqual([message.eventId]);
    expect(await searchIds(alice, "zebra")).toEqual([file.eventId]);
    const acks = await send(alice, redact(roomId, message.eventId, "too much"), redact(roomId, file.eventId));
    expect(acks.map((a) => a.error)).toEqual([undefined, undefined]);
    const bob = t.as("rd-bob");
    const shown = await eventById(bob, roomId, message.eventId);
    expect(shown).toMatchObject({ redacted: true, seq: message.seq, type: RoomEventType.TEXT });
    expect(shown.content).toMatchObject({ case: "text", value: { body: "" } });
    const shownFile = await eventById(bob, roomId, file.eventId);
    expect(shownFile.content).toMatchObject({
      case: "attachment",
      value: { uri: "", filename: "", caption: "", mimeType: "" },
    });
    expect((await eventById(bob, roomId, acks[0]!.eventId)).content).toMatchObject({
      case: "redaction",
      value: { targetEventId: message.eventId, reason: "too much" },
    });
    expect(await searchIds(bob, "walrus")).toEqual([]);
    expect(await searchIds(bob, "zebra")).toEqual([]);
  });

  it("also empty the edits of the target, so no version of the text stays readable", async () => {
    const alice = t.as("rde-alice");
    const roomId = await groupRoom(t, "rde-alice", "rde-bob");
    const message = await sendOk(alice, text(roomId, "my password is hunter2"));
    const fix = await sendOk(alice, edit(roomId, message.eventId, "my password is hunter3"));
    await sendOk(alice, redact(roomId, message.eventId));
    const bob = t.as("rde-bob");
    const shownEdit = await eventById(bob, roomId, fix.eventId);
    expect(shownEdit).toMatchObject({ redacted: true, type: RoomEventType.EDIT });
    expect(JSON.stringify(shownEdit.content)).not.toContain("hunter");
    expect(await searchIds(bob, "hunter3")).toEqual([]);
  });

  it("of another member's message need moderator or higher", async () => {
    const roomId = await groupRoom(t, "rdm-alice", "rdm-bob", "rdm-carol");
    const alice = t.as("rdm-alice");
    await alice.addRoomSubscriptions({
      roomId,
      members: [
        { profileId: "rdm-mod", role: "moderator" },
        { profileId: "rdm-admin", role: "admin" },
      ],
    });
    const bob = t.as("rdm-bob");
    const targets = await send(
      bob,
      text(roomId, "one"),
      text(roomId, "two"),
      text(roomId, "three"),
      text(roomId, "four"),
    );
    const before = await countRows(t, roomId);
    await sendRefused(
      t.as("rdm-carol"),
      redact(roomId, targets[0]!.eventId),
      "permission_denied",
      "event[0].redaction.target_event_id",
    );
    expect(await countRows(t, roomId)).toEqual(before);
    expect((await eventById(bob, roomId, targets[0]!.eventId)).redacted).toBe(false);
    const redactors = ["rdm-bob", "rdm-mod", "rdm-admin", "rdm-alice"];
    for (const [i, who] of redactors.entries()) await sendOk(t.as(who), redact(roomId, targets[i]!.eventId));
    for (const target of targets) expect((await eventById(bob, roomId, target.eventId)).redacted).toBe(true);
  });

  it("twice is a failed precondition, in one call or in two", async () => {
    const alice = t.as("rd2-alice");
    const roomId = await groupRoom(t, "rd2-alice");
    const first = await sendOk(alice, text(roomId, "once"));
    const second = await sendOk(alice, text(roomId, "twice"));
    await sendOk(alice, redact(roomId, first.eventId));
    const field = "event[0].redaction.target_event_id";
    await sendRefused(alice, redact(roomId, first.eventId), "failed_precondition", field);
    const acks = await send(alice, redact(roomId, second.eventId), redact(roomId, second.eventId));
    expect(acks[0]?.error).toBeUndefined();
    expect(acks[1]?.error).toMatchObject({
      code: "failed_precondition",
      message: expect.stringContaining("event[1].redaction"),
    });
  });

  it("cannot be undone by an edit or a reaction in the same call", async () => {
    const alice = t.as("rd3-alice");
    const roomId = await groupRoom(t, "rd3-alice");
    const target = await sendOk(alice, text(roomId, "classified narwhal"));
    const acks = await send(
      alice,
      redact(roomId, target.eventId),
      edit(roomId, target.eventId, "classified narwhal again"),
      react(roomId, target.eventId),
    );
    expect(acks.map((a) => a.error?.code)).toEqual([undefined, "failed_precondition", "failed_precondition"]);
    expect(await eventById(alice, roomId, target.eventId)).toMatchObject({
      redacted: true,
      content: { value: { body: "" } },
    });
    expect(await searchIds(alice, "narwhal")).toEqual([]);
  });

  it("make reactions to the target fail", async () => {
    const alice = t.as("rd4-alice");
    const roomId = await groupRoom(t, "rd4-alice");
    const target = await sendOk(alice, text(roomId, "bye"));
    await sendOk(alice, redact(roomId, target.eventId));
    await sendRefused(alice, react(roomId, target.eventId), "failed_precondition", "event[0].reaction.target_event_id");
  });
});
