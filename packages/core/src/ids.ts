import { randomBytes } from "node:crypto";

/**
 * A UUIDv7: time-ordered, so ids sort by creation and index well. RFC 9562 layout:
 * 48-bit unix ms, version 7, 12 random bits, variant 10, 62 random bits.
 */
// Random bytes are drawn from the system 4 KiB at a time rather than per id: one call to the
// kernel's generator costs about as much as the rest of making an id.
const POOL = 4096;
let pool = randomBytes(POOL);
let offset = 0;

/** `n` (at most 4096) fresh random bytes from the pool; each byte is handed out once, so the caller may write them. */
export function pooledRandomBytes(n: number): Buffer {
  if (offset + n > POOL) {
    pool = randomBytes(POOL);
    offset = 0;
  }
  offset += n;
  return pool.subarray(offset - n, offset);
}

export function newId(now = Date.now()): string {
  const b = pooledRandomBytes(16);
  b.writeUIntBE(now, 0, 6);
  b[6] = 0x70 | ((b[6] as number) & 0x0f);
  b[8] = 0x80 | ((b[8] as number) & 0x3f);
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const isId = (s: string) => UUID.test(s);
