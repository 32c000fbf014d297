import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type ServerFrame, ServerFrameSchema } from "@service-chat/api";

/** A frame and its binary form, written to a device as a live frame is (framed once for all). */
export interface SharedFrame {
  frame: ServerFrame;
  bytes: Uint8Array;
}

let last: (SharedFrame & { at: number }) | undefined;

/**
 * `pong{server_time: at}` without a request id, made once per millisecond: the heartbeats of one
 * tick of the gateway's clock (all at the same time) and the answers to pings of the same
 * millisecond are one frame, encoded and framed for the wire once instead of once per device.
 */
export function pong(at: number): SharedFrame {
  if (last?.at !== at) {
    const frame = create(ServerFrameSchema, { frame: { case: "pong", value: { serverTime: timestampFromMs(at) } } });
    last = { at, frame, bytes: toBinary(ServerFrameSchema, frame) };
  }
  return last;
}
