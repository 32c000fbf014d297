import { fromBinary } from "@bufbuild/protobuf";
import { RoomEventSchema } from "@service-chat/api";
import { describe, expect, it } from "vitest";
import type { EventRow } from "../../src/db/schema.js";
import { EncodedEvents } from "../../src/delivery/encoded-events.js";

function row(id: string, body: string, change: Partial<EventRow> = {}): EventRow {
  return {
    id,
    room_id: "r",
    seq: 1,
    sender_id: "alice",
    sender_contact_id: "",
    type: "text",
    content: { body },
    parent_id: null,
    client_id: null,
    edited: false,
    redacted: false,
    sent_at: new Date(0),
    server_ts: new Date(0),
    ...change,
  };
}

const body = (bytes: Uint8Array) => {
  const e = fromBinary(RoomEventSchema, bytes);
  return e.content.case === "text" ? e.content.value.body : `(${e.content.case})`;
};

describe("the encoded events Sync keeps", () => {
  it("encodes an event once while it is neither edited nor redacted", () => {
    const kept = new EncodedEvents();
    const first = kept.of(row("e1", "hello"));
    expect(body(first)).toBe("hello");
    expect(kept.of(row("e1", "hello"))).toBe(first);
  });

  it("never answers the kept form of an event read edited or redacted since", () => {
    const kept = new EncodedEvents();
    kept.of(row("e1", "hello"));
    const edited = kept.of(row("e1", "hello, edited", { edited: true }));
    expect(body(edited)).toBe("hello, edited");
    expect(body(kept.of(row("e1", "again", { edited: true })))).toBe("again");
    expect(kept.of(row("e1", "", { redacted: true, content: {} }))).not.toBe(edited);
    // Only the pristine form was kept.
    expect(kept.size.events).toBe(1);
  });

  it("lets the oldest forms go beyond its size", () => {
    const one = new EncodedEvents().of(row("e0", "a")).byteLength;
    const kept = new EncodedEvents(one * 3);
    for (const id of ["e1", "e2", "e3", "e4", "e5"]) kept.of(row(id, "a"));
    expect(kept.size).toEqual({ events: 3, bytes: one * 3 });
    const e5 = kept.of(row("e5", "a"));
    expect(kept.of(row("e5", "a"))).toBe(e5);
    expect(kept.of(row("e1", "a"))).not.toBe(kept.of(row("e2", "a")));
  });
});
