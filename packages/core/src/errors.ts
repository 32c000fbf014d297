/**
 * The closed set of domain errors. Business code throws these; the RPC layer maps them to
 * protocol codes in exactly one place (apps/default/src/server/errors.ts).
 */
export type ErrorCode =
  | "invalid_argument"
  | "not_found"
  | "permission_denied"
  | "unauthenticated"
  | "conflict"
  | "failed_precondition"
  | "resource_exhausted"
  | "unavailable";

export class AppError extends Error {
  override readonly name = "AppError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The request field the error is about, e.g. "event[3].text.body". */
    readonly field?: string,
  ) {
    super(field ? `${field}: ${message}` : message);
  }
}

export const invalid = (field: string, message: string) => new AppError("invalid_argument", message, field);
export const notFound = (what: string) => new AppError("not_found", `${what} not found`);
export const denied = (message: string) => new AppError("permission_denied", message);
export const unauthenticated = (message: string) => new AppError("unauthenticated", message);
export const conflict = (message: string) => new AppError("conflict", message);
export const precondition = (message: string) => new AppError("failed_precondition", message);
