import type { Writable } from "node:stream";
import { create, fromJsonString, toBinary } from "@bufbuild/protobuf";
import { ServerFrameSchema } from "@service-chat/api";
import { describe, expect, it } from "vitest";
import * as ws from "ws";
import { framed, framedJson } from "../../src/ws.js";

/** ws's own frame parser, as a client runs it on what a server sends (unmasked frames). */
const Receiver = (ws as unknown as { Receiver: new (options: { isServer: boolean; maxPayload: number }) => Writable })
  .Receiver;

describe("live frames framed once for every socket", () => {
  it("are binary WebSocket frames a client reads back byte for byte, at every length encoding", async () => {
    const payloads = [0, 125, 126, 300, 65535, 65536, 200_000].map((n) =>
      Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) % 256),
    );
    const receiver = new Receiver({ isServer: false, maxPayload: 0 });
    const got: { data: Buffer; binary: boolean }[] = [];
    receiver.on("message", (data: Buffer, binary: boolean) => got.push({ data, binary }));
    // The frames back to back, cut into pieces as a TCP stream may deliver them.
    const wire = Buffer.concat(payloads.map((p) => framed(p)));
    await new Promise<void>((resolve, reject) => {
      receiver.once("error", reject);
      for (let at = 0; at < wire.length; at += 1_000) receiver.write(wire.subarray(at, at + 1_000));
      receiver.end(resolve);
    });
    expect(got).toHaveLength(payloads.length);
    got.forEach((g, i) => {
      expect(g.binary).toBe(true);
      expect(new Uint8Array(g.data)).toEqual(payloads[i]);
    });
    const first = payloads[3] as Uint8Array;
    expect(framed(first)).toBe(framed(first)); // made once per payload
  });

  it("are, for the json subprotocol, text frames of the frame's JSON, made once per live frame", async () => {
    const frame = create(ServerFrameSchema, {
      frame: {
        case: "event",
        value: { roomId: "r1", seq: 7n, content: { case: "text", value: { body: "héllo ".repeat(30) } } },
      },
    });
    const bytes = toBinary(ServerFrameSchema, frame);
    const receiver = new Receiver({ isServer: false, maxPayload: 0 });
    const got: { data: Buffer; binary: boolean }[] = [];
    receiver.on("message", (data: Buffer, binary: boolean) => got.push({ data, binary }));
    await new Promise<void>((resolve, reject) => {
      receiver.once("error", reject);
      receiver.write(framedJson(bytes, frame));
      receiver.end(resolve);
    });
    expect(got).toHaveLength(1);
    expect(got[0]?.binary).toBe(false);
    expect(fromJsonString(ServerFrameSchema, got[0]?.data.toString("utf8") ?? "")).toEqual(frame);
    expect(framedJson(bytes, frame)).toBe(framedJson(bytes, frame));
  });
});
