import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { CallAction, type RoomEvent, RoomEventSchema, RoomEventType, type TextFormat } from "@service-chat/api";
import type { AppError } from "@service-chat/core";
import { describe, expect, it } from "vitest";
import type { Role } from "../../src/db/schema.js";
import { type ContentCase, KIND_NAMES, KINDS, kindNamed, kindOfType } from "../../src/events/kinds/index.js";
import { checkReferences, type Referenced } from "../../src/events/references.js";
import { type ValidEvent, validateEvent } from "../../src/events/validate.js";

// Each kind of event as its descriptor says (events/kinds/): validation, search text, push
// preview and what it may target. No database: these are the decisions made before storing.

const ROOM = "0190f6a8-2b9f-7000-8000-000000000001";
const TARGET = "0190f6a8-2b9f-7000-8000-000000000002";

const event = (init: Omit<MessageInitShape<typeof RoomEventSchema>, "$typeName">): RoomEvent =>
  create(RoomEventSchema, { roomId: ROOM, ...init });
const validate = (e: RoomEvent) => validateEvent("event[0]", e, "alice");
const refusal = (f: () => unknown): AppError | undefined => {
  try {
    f();
    return undefined;
  } catch (err) {
    return err as AppError;
  }
};
/** The refusal of an event: its code and the field its message names. */
const refused = (e: RoomEvent) => {
  const err = refusal(() => validate(e));
  return err && { code: err.code, field: err.field ?? err.message.split(":")[0] };
};

/** A valid event of each kind clients send. */
const VALID: Record<Exclude<ContentCase, "system">, RoomEvent> = {
  text: event({ type: RoomEventType.TEXT, content: { case: "text", value: { body: "hello\nworld" } } }),
  attachment: event({
    type: RoomEventType.ATTACHMENT,
    content: {
      case: "attachment",
      value: { uri: "https://files.example/a.pdf", mimeType: "application/pdf", filename: "budget-2024.pdf" },
    },
  }),
  reaction: event({
    type: RoomEventType.REACTION,
    content: { case: "reaction", value: { key: "👍", targetEventId: TARGET } },
  }),
  encrypted: event({
    type: RoomEventType.ENCRYPTED,
    content: { case: "encrypted", value: { algorithm: "m.megolm.v1", ciphertext: new Uint8Array([1, 2, 3]) } },
  }),
  call: event({
    type: RoomEventType.CALL,
    content: { case: "call", value: { callId: "c1", action: CallAction.OFFER } },
  }),
  edit: event({
    type: RoomEventType.EDIT,
    content: { case: "edit", value: { targetEventId: TARGET, text: { body: "fixed" } } },
  }),
  redaction: event({ type: RoomEventType.REDACTION, content: { case: "redaction", value: { targetEventId: TARGET } } }),
};

describe("the list of kinds", () => {
  it("has one kind per content case and per RoomEventType, named as its content case", () => {
    const cases = RoomEventSchema.oneofs.find((o) => o.name === "content")?.fields.map((f) => f.localName);
    expect([...KIND_NAMES].sort()).toEqual([...(cases ?? [])].sort());
    const types = Object.values(RoomEventType).filter((v) => typeof v === "number" && v !== RoomEventType.UNSPECIFIED);
    expect(KINDS.map((k) => k.type).sort()).toEqual([...types].sort());
    for (const k of KINDS) {
      expect(kindNamed(k.name)).toBe(k);
      expect(kindOfType(k.type)).toBe(k);
      expect(k.name).toMatch(/^[a-z][a-z0-9_]*$/); // it goes into the database's CHECK as is
    }
    expect(() => kindNamed("poll")).toThrow(/unknown event kind/);
  });
});

describe("validation per kind", () => {
  it.each(Object.entries(VALID))("accepts a valid %s event", (name, e) => {
    const valid = validate(e);
    expect(valid).toMatchObject({ roomId: ROOM, kind: name });
    expect(valid.targetId).toBe(["reaction", "edit", "redaction"].includes(name) ? TARGET : undefined);
  });

  it("refuses what no kind is, what clients may not send, and a type that is not its content", () => {
    expect(refused(event({ type: RoomEventType.UNSPECIFIED }))).toEqual({
      code: "invalid_argument",
      field: "event[0].type",
    });
    expect(refused(event({ type: 42 as RoomEventType }))).toEqual({ code: "invalid_argument", field: "event[0].type" });
    expect(
      refused(event({ type: RoomEventType.SYSTEM, content: { case: "system", value: { actorId: "alice" } } })),
    ).toEqual({ code: "invalid_argument", field: "event[0].type" });
    expect(refused(event({ type: RoomEventType.TEXT }))).toEqual({
      code: "invalid_argument",
      field: "event[0].content",
    });
    expect(refused(event({ ...VALID.text, type: RoomEventType.CALL }))).toEqual({
      code: "invalid_argument",
      field: "event[0].type",
    });
    const asAlice = event({ ...VALID.text, source: { profileId: "alice" } });
    expect(refusal(() => validateEvent("event[0]", asAlice, "bob"))?.code).toBe("permission_denied");
  });

  const bad: [string, RoomEvent, string][] = [
    [
      "an empty text",
      event({ type: RoomEventType.TEXT, content: { case: "text", value: { body: " " } } }),
      "event[0].text.body",
    ],
    [
      "a text over 16 KiB",
      event({ type: RoomEventType.TEXT, content: { case: "text", value: { body: "x".repeat(16 * 1024 + 1) } } }),
      "event[0].text.body",
    ],
    [
      "a text of an unknown format",
      event({ type: RoomEventType.TEXT, content: { case: "text", value: { body: "x", format: 9 as TextFormat } } }),
      "event[0].text.format",
    ],
    [
      "an attachment without an absolute URI",
      event({
        type: RoomEventType.ATTACHMENT,
        content: { case: "attachment", value: { uri: "a.pdf", mimeType: "a/b" } },
      }),
      "event[0].attachment.uri",
    ],
    [
      "an attachment of no media type",
      event({
        type: RoomEventType.ATTACHMENT,
        content: { case: "attachment", value: { uri: "https://x/y", mimeType: "pdf" } },
      }),
      "event[0].attachment.mime_type",
    ],
    [
      "a negative attachment size",
      event({
        type: RoomEventType.ATTACHMENT,
        content: { case: "attachment", value: { uri: "https://x/y", mimeType: "a/b", sizeBytes: -1n } },
      }),
      "event[0].attachment.size_bytes",
    ],
    [
      "a reaction without a key",
      event({ type: RoomEventType.REACTION, content: { case: "reaction", value: { targetEventId: TARGET } } }),
      "event[0].reaction.key",
    ],
    [
      "a reaction to no valid id",
      event({ type: RoomEventType.REACTION, content: { case: "reaction", value: { key: "+1", targetEventId: "x" } } }),
      "event[0].reaction.target_event_id",
    ],
    [
      "an encrypted event without ciphertext",
      event({ type: RoomEventType.ENCRYPTED, content: { case: "encrypted", value: { algorithm: "a" } } }),
      "event[0].encrypted.ciphertext",
    ],
    [
      "an encrypted event over 64 KiB",
      event({
        type: RoomEventType.ENCRYPTED,
        content: { case: "encrypted", value: { algorithm: "a", ciphertext: new Uint8Array(64 * 1024 + 1) } },
      }),
      "event[0].encrypted.ciphertext",
    ],
    [
      "a call without an action",
      event({ type: RoomEventType.CALL, content: { case: "call", value: { callId: "c" } } }),
      "event[0].call.action",
    ],
    [
      "an edit without text",
      event({ type: RoomEventType.EDIT, content: { case: "edit", value: { targetEventId: TARGET } } }),
      "event[0].edit.text",
    ],
    [
      "an edit to an empty text",
      event({
        type: RoomEventType.EDIT,
        content: { case: "edit", value: { targetEventId: TARGET, text: { body: "" } } },
      }),
      "event[0].edit.text.body",
    ],
    [
      "a redaction of nothing",
      event({ type: RoomEventType.REDACTION, content: { case: "redaction", value: {} } }),
      "event[0].redaction.target_event_id",
    ],
    ["a bad client id", event({ ...VALID.text, clientId: "a\nb" }), "event[0].client_id"],
    ["a bad parent id", event({ ...VALID.text, parentId: "nope" }), "event[0].parent_id"],
    ["a bad room id", event({ ...VALID.text, roomId: "" }), "event[0].room_id"],
  ];

  it.each(bad)("refuses %s, naming the field", (_, e, field) => {
    expect(refused(e)).toEqual({ code: "invalid_argument", field });
  });
});

describe("search text and push per kind", () => {
  const search = (e: RoomEvent) =>
    e.content.case ? kindNamed(e.content.case).searchText?.(e.content.value) : undefined;
  const push = (e: RoomEvent) => (e.content.case ? kindNamed(e.content.case).push?.(e.content.value) : undefined);

  it("finds texts by body and attachments by filename (whole and as words) and caption; nothing else", () => {
    expect(search(VALID.text)).toBe("hello\nworld");
    expect(search(VALID.attachment)).toBe("budget-2024.pdf budget 2024 pdf ");
    for (const name of ["reaction", "encrypted", "call", "edit", "redaction"] as const) {
      expect(search(VALID[name]), name).toBeUndefined();
    }
  });

  it("pushes messages and call offers, previews text and filenames, never encrypted content", () => {
    const long = event({ type: RoomEventType.TEXT, content: { case: "text", value: { body: "y".repeat(500) } } });
    expect(push(long)).toEqual({ preview: "y".repeat(140) });
    expect(push(VALID.attachment)).toEqual({ preview: "budget-2024.pdf" });
    expect(push(VALID.encrypted)).toEqual({});
    expect(push(VALID.call)).toEqual({});
    const answer = event({
      type: RoomEventType.CALL,
      content: { case: "call", value: { callId: "c", action: CallAction.ANSWER } },
    });
    expect(push(answer)).toBeUndefined();
    for (const name of ["reaction", "edit", "redaction"] as const) expect(push(VALID[name]), name).toBeUndefined();
  });
});

describe("references", () => {
  const check = (e: ValidEvent, target: Referenced | undefined, role: Role = "member", caller = "alice") =>
    refusal(() => checkReferences("event[0]", e, caller, role, new Map(target ? [[TARGET, target]] : [])));
  const mine = (type: Referenced["type"]): Referenced => ({ type, sender_id: "alice", redacted: false });
  const theirs = (type: Referenced["type"]): Referenced => ({ type, sender_id: "bob", redacted: false });

  it("needs the parent of a reply in the room", () => {
    const reply = validate(event({ ...VALID.text, parentId: TARGET }));
    expect(check(reply, mine("text"))).toBeUndefined();
    expect(check(reply, undefined)).toMatchObject({ code: "invalid_argument", field: "event[0].parent_id" });
  });

  it("needs a target in the room, not a system event, not redacted", () => {
    for (const name of ["reaction", "edit", "redaction"] as const) {
      const e = validate(VALID[name]);
      const field = `event[0].${name}.target_event_id`;
      expect(check(e, undefined)).toMatchObject({ code: "invalid_argument", field });
      expect(check(e, mine("system"))).toMatchObject({
        code: "invalid_argument",
        message: `${field}: system events cannot be edited, redacted or reacted to`,
      });
      expect(check(e, { ...mine("text"), redacted: true })).toMatchObject({ code: "failed_precondition", field });
      expect(check(e, mine("text"))).toBeUndefined();
    }
  });

  it("reacts to any kind of message, anyone's", () => {
    for (const type of ["attachment", "encrypted", "call", "reaction"] as const) {
      expect(check(validate(VALID.reaction), theirs(type))).toBeUndefined();
    }
  });

  it("edits one's own text messages only, whatever the role", () => {
    const edit = validate(VALID.edit);
    expect(check(edit, mine("attachment"))).toMatchObject({
      code: "invalid_argument",
      message: "event[0].edit.target_event_id: only text messages can be edited",
    });
    expect(check(edit, theirs("text"), "owner")).toMatchObject({ code: "permission_denied" });
  });

  it("redacts one's own events, or anyone's with event.redact_any", () => {
    const redaction = validate(VALID.redaction);
    expect(check(redaction, mine("attachment"))).toBeUndefined();
    expect(check(redaction, theirs("text"), "member")).toMatchObject({ code: "permission_denied" });
    expect(check(redaction, theirs("text"), "moderator")).toBeUndefined();
  });
});
