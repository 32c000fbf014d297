import { TextFormat } from "@service-chat/api";
import { checkText, invalid } from "@service-chat/core";

/** Limits of the API contract (docs/api.md), shared by several kinds. */
export const MAX_TEXT_BYTES = 16 * 1024;
export const MAX_BLOB_BYTES = 64 * 1024;

export function checkEnum(field: string, value: number, e: object): void {
  if (!(value in e)) throw invalid(field, `${value} is not a known value`);
}

/** A message body: required, at most 16 KiB, line breaks allowed, a known format. */
export function checkBody(field: string, body: { body: string; format: TextFormat }): void {
  checkText(`${field}.body`, body.body, { maxBytes: MAX_TEXT_BYTES, required: true, multiline: true });
  checkEnum(`${field}.format`, body.format, TextFormat);
}
