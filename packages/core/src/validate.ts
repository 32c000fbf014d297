import { invalid } from "./errors.js";
import { isId } from "./ids.js";

/** Field checks shared by every request validator; each throws invalid_argument naming the field. */

const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;

export interface TextRule {
  /** Maximum length in UTF-8 bytes. */
  maxBytes: number;
  required?: boolean;
  /** Allow line breaks and tabs (message bodies); names stay on one line. */
  multiline?: boolean;
}

export function checkText(field: string, value: string, rule: TextRule): string {
  if (rule.required && value.trim() === "") throw invalid(field, "is required");
  if (Buffer.byteLength(value, "utf8") > rule.maxBytes) throw invalid(field, `is longer than ${rule.maxBytes} bytes`);
  if (CONTROL.test(value) || (!rule.multiline && /[\r\n\t]/.test(value))) {
    throw invalid(field, "contains control characters");
  }
  return value;
}

/** A server-made id (UUID). */
export function checkId(field: string, value: string): string {
  if (value === "") throw invalid(field, "is required");
  if (!isId(value)) throw invalid(field, "is not a valid id");
  return value;
}

export function checkOptionalId(field: string, value: string): string | undefined {
  return value === "" ? undefined : checkId(field, value);
}

/** A profile id comes from an identity provider: any short printable string without spaces. */
export function checkProfileId(field: string, value: string): string {
  if (value === "") throw invalid(field, "is required");
  if (value.length > 128 || !/^[^\s\u0000-\u001F\u007F]+$/.test(value)) {
    throw invalid(field, "must be 1 to 128 characters without spaces or control characters");
  }
  return value;
}

/** A page size: 0 means the default, anything above `max` is an error rather than a silent cap. */
export function checkLimit(field: string, value: number, fallback: number, max: number): number {
  if (value === 0) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) throw invalid(field, `must be between 1 and ${max}`);
  return value;
}

export function checkCount(field: string, length: number, max: number, min = 0): void {
  if (length < min) throw invalid(field, min === 1 ? "must not be empty" : `needs at least ${min} entries`);
  if (length > max) throw invalid(field, `has more than ${max} entries`);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether a string is valid Unicode: no lone surrogate (which UTF-8 and the database cannot hold). */
export const isWellFormed = (s: string): boolean => !LONE_SURROGATE.test(s);
