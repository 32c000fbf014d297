import { invalid } from "./errors.js";

/**
 * Opaque page cursors: a versioned JSON value in base64url. Clients pass them back unchanged; a
 * cursor that was tampered with or made for another query is an invalid_argument, never a crash.
 */
export function encodeCursor(value: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify({ v: 1, ...value })).toString("base64url");
}

export function decodeCursor<T extends Record<string, "string" | "number">>(
  field: string,
  cursor: string,
  shape: T,
): { [K in keyof T]: T[K] extends "number" ? number : string } | undefined {
  if (cursor === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalid(field, "is not a cursor this server issued");
  }
  if (typeof parsed !== "object" || parsed === null || (parsed as { v?: unknown }).v !== 1) {
    throw invalid(field, "is not a cursor this server issued");
  }
  for (const [key, type] of Object.entries(shape)) {
    const v = (parsed as Record<string, unknown>)[key];
    if (typeof v !== type || (type === "number" && !Number.isSafeInteger(v))) {
      throw invalid(field, "is not a cursor this server issued");
    }
  }
  return parsed as { [K in keyof T]: T[K] extends "number" ? number : string };
}
