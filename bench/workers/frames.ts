/**
 * What a receiver of the message-path scenario needs from a live `event` frame — its room, its
 * seq and the benchmark mark in its text — read without decoding the frame: a walk over the
 * protobuf wire format (binary frames), or the fields where the server writes them (`json`
 * subprotocol: protobuf JSON, fields in declaration order). Receivers get tens of thousands of
 * frames a second on one core; a full decode of each would make them the bottleneck. Anything
 * that is not an event (acks, errors, synced, …) is answered `undefined` and decoded in full by
 * the caller.
 */
const MARK = "B|";
const MARK_BYTES = Buffer.from(MARK);

export interface EventSeen {
  roomId: string;
  seq: number;
  /** The benchmark mark in the text: step, number, sent at (ms since the epoch); absent for other events. */
  step?: number;
  n?: number;
  sentAt?: number;
}

let at = 0;

function varint(b: Uint8Array, end: number): number {
  let x = 0;
  let scale = 1;
  for (;;) {
    if (at >= end) throw new RangeError("truncated varint");
    const byte = b[at++] as number;
    x += (byte & 0x7f) * scale;
    if (byte < 0x80) return x;
    scale *= 128;
  }
}

function skip(b: Uint8Array, wireType: number, end: number): void {
  if (wireType === 0) varint(b, end);
  else if (wireType === 1) at += 8;
  else if (wireType === 2) {
    const n = varint(b, end); // read first: `at += varint()` would add to the old `at`
    at += n;
  } else if (wireType === 5) at += 4;
  else throw new RangeError(`wire type ${wireType}`);
}

function mark(text: string, into: EventSeen): void {
  const parts = text.split("|");
  if (parts.length < 5) return;
  into.step = Number(parts[1]);
  into.n = Number(parts[2]);
  into.sentAt = Number(parts[3]);
}

/** A binary ServerFrame: the event's room, seq and mark, or undefined when it holds no event. */
export function scanBinary(b: Buffer): EventSeen | undefined {
  try {
    at = 0;
    let start = -1;
    let end = -1;
    while (at < b.length) {
      const tag = varint(b, b.length);
      if (tag === 0x1a) {
        // field 3 (event), length-delimited
        const n = varint(b, b.length);
        start = at;
        end = at + n;
        at = end;
      } else skip(b, tag & 7, b.length);
    }
    if (start < 0 || end > b.length) return undefined;
    const seen: EventSeen = { roomId: "", seq: 0 };
    at = start;
    while (at < end) {
      const tag = varint(b, end);
      if (tag === 0x12) {
        // field 2 (room_id)
        const n = varint(b, end);
        seen.roomId = b.toString("latin1", at, at + n);
        at += n;
      } else if (tag === 0x30) {
        // field 6 (seq)
        seen.seq = varint(b, end);
      } else if (tag === 0x4a) {
        // field 9 (text content): the body is inside, the mark at its start
        const n = varint(b, end);
        const i = b.indexOf(MARK_BYTES, at);
        if (i >= 0 && i < at + n) mark(b.toString("latin1", i, Math.min(at + n, i + 64)), seen);
        at += n;
      } else skip(b, tag & 7, end);
    }
    return seen.roomId ? seen : undefined;
  } catch {
    return undefined;
  }
}

/** A ServerFrame in protobuf JSON: the event's room, seq and mark, or undefined when it holds no event. */
export function scanJson(s: string): EventSeen | undefined {
  if (!s.startsWith('{"event":{')) return undefined;
  const r = s.indexOf('"roomId":"');
  if (r < 0) return undefined;
  const rEnd = s.indexOf('"', r + 10);
  // int64 is a string in protobuf JSON; a seq of 0 would be left out (seqs start at 1).
  const q = s.indexOf('"seq":"', rEnd);
  if (q < 0) return undefined;
  const seen: EventSeen = { roomId: s.slice(r + 10, rEnd), seq: Number(s.slice(q + 7, s.indexOf('"', q + 7))) };
  const t = s.indexOf('"text":{', q);
  const i = t < 0 ? -1 : s.indexOf(MARK, t);
  if (i >= 0) mark(s.slice(i, i + 64), seen);
  return seen;
}
