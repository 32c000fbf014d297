import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { LiveDeliverySchema } from "@service-chat/api";
import { describe, expect, it } from "vitest";
import { decodeDelivery, encodeRecipient, publishToRecipients } from "../../src/deliveries.js";

const frame = new Uint8Array([0x1a, 0x03, 1, 2, 3]);

describe("decodeDelivery", () => {
  it("reads what protobuf's own encoder writes: recipients in order, the frame, the traceparent", () => {
    const recipients = ["ann", "bjørn@example.com", "用户-7", "", "x".repeat(300)];
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const bytes = toBinary(LiveDeliverySchema, create(LiveDeliverySchema, { recipients, frame, traceparent }));
    const d = decodeDelivery(bytes);
    expect(d.recipients).toEqual(recipients);
    expect([...d.frame]).toEqual([...frame]);
    expect(d.traceparent).toBe(traceparent);
  });

  it("reads what publishToRecipients writes, with no traceparent", () => {
    const published: Uint8Array[] = [];
    publishToRecipients({ publish: (_s, data) => published.push(data) }, ["a", "b"].map(encodeRecipient), frame);
    const d = decodeDelivery(published[0] as Uint8Array);
    expect({ ...d, frame: [...d.frame] }).toEqual({ recipients: ["a", "b"], frame: [...frame], traceparent: "" });
  });

  it("skips fields it does not know, as protobuf readers do", () => {
    const bytes = new BinaryWriter()
      .tag(9, WireType.Varint)
      .uint64(123n)
      .tag(1, WireType.LengthDelimited)
      .string("ann")
      .tag(10, WireType.LengthDelimited)
      .bytes(new Uint8Array(40))
      .tag(2, WireType.LengthDelimited)
      .bytes(frame)
      .finish();
    expect(decodeDelivery(bytes)).toEqual({ recipients: ["ann"], frame, traceparent: "" });
  });

  it("throws on bytes that are not a LiveDelivery", () => {
    expect(() => decodeDelivery(new Uint8Array([0xff, 0xff, 0xff]))).toThrow();
    expect(() => decodeDelivery(new BinaryWriter().tag(1, WireType.Varint).uint32(5).finish())).toThrow(/wire type/);
    // A length past the end.
    expect(() => decodeDelivery(new Uint8Array([0x0a, 0x10, 0x61]))).toThrow();
  });
});
