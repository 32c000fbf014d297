/**
 * The text body of a benchmark message: `B|<step>|<n>|<sent at, ms since the epoch>|` padded
 * with `x` to a fixed size. The sender writes performance.timeOrigin + performance.now(); a
 * receiver finds the marker in the frame's bytes (protobuf keeps strings as they are) and
 * subtracts its own clock, without decoding the frame.
 */
const MARK = Buffer.from("B|");

export const now = (): number => performance.timeOrigin + performance.now();

export function body(step: number, n: number, size: number): string {
  const head = `B|${step}|${n}|${now().toFixed(3)}|`;
  return head.length >= size ? head : head + "x".repeat(size - head.length);
}

export interface Mark {
  step: number;
  n: number;
  sentAt: number;
}

export function findMark(data: Buffer): Mark | undefined {
  const i = data.indexOf(MARK);
  if (i < 0) return undefined;
  const parts = data.toString("latin1", i, Math.min(data.length, i + 64)).split("|");
  if (parts.length < 5) return undefined;
  return { step: Number(parts[1]), n: Number(parts[2]), sentAt: Number(parts[3]) };
}
