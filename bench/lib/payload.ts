/**
 * The text body of a benchmark message: `B|<step>|<n>|<sent at, ms since the epoch>|` padded
 * with `x` to a fixed size. The sender writes performance.timeOrigin + performance.now(); a
 * receiver finds the marker in the frame's bytes (protobuf keeps strings as they are) and
 * subtracts its own clock, without decoding the frame.
 *
 * Events without a body to time (reactions, edits in the many-rooms scenario) carry a counting
 * mark `C|<step>|<n>|…` in their client id instead: the receiver counts and dedupes them like the
 * others but records no latency for them.
 */
const MARK = Buffer.from("B|");
const COUNT_MARK = Buffer.from("C|");

export const now = (): number => performance.timeOrigin + performance.now();

export function body(step: number, n: number, size: number): string {
  const head = `B|${step}|${n}|${now().toFixed(3)}|`;
  return head.length >= size ? head : head + "x".repeat(size - head.length);
}

/** A client id that makes an event countable (step and number) but not timed. */
export const countingId = (step: number, n: number, suffix: string): string => `C|${step}|${n}|${suffix}`;

export interface Mark {
  step: number;
  n: number;
  /** NaN for a counting mark (no timestamp). */
  sentAt: number;
}

export function findMark(data: Buffer): Mark | undefined {
  const i = data.indexOf(MARK);
  if (i >= 0) {
    const parts = data.toString("latin1", i, Math.min(data.length, i + 64)).split("|");
    if (parts.length < 5) return undefined;
    return { step: Number(parts[1]), n: Number(parts[2]), sentAt: Number(parts[3]) };
  }
  const j = data.indexOf(COUNT_MARK);
  if (j < 0) return undefined;
  const parts = data.toString("latin1", j, Math.min(data.length, j + 40)).split("|");
  if (parts.length < 4) return undefined;
  return { step: Number(parts[1]), n: Number(parts[2]), sentAt: Number.NaN };
}
