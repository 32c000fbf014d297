/** How deep any JSON this service reads may nest: requests and device frames need far less. */
export const MAX_JSON_DEPTH = 64;

const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether JSON text nests objects and arrays deeper than `max`, found in one pass over its bytes
 * without parsing it (brackets inside strings do not count). Run before a parse, it keeps a body
 * of nested brackets from costing the parser seconds and hundreds of megabytes: refusing one takes
 * about a millisecond per megabyte.
 */
export function nestsDeeperThan(json: Uint8Array | string, max = MAX_JSON_DEPTH): boolean {
  const bytes = typeof json === "string" ? Buffer.from(json, "utf8") : json;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) {
      inString = true;
    } else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      if (++depth > max) return true;
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) {
      depth--;
    }
  }
  return false;
}
