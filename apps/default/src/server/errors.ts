import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { type ErrorDetail, ErrorDetailSchema } from "@service-chat/api";
import { AppError, type ErrorCode, isDatabaseUnavailable, type Logger, type OutageLog } from "@service-chat/core";

/**
 * The one place domain errors become protocol errors: an RPC's error, and the ErrorDetail of a
 * refused event in SendEvent's acks, carry the same Connect code for the same condition.
 */
const CODES: Record<ErrorCode, Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  permission_denied: Code.PermissionDenied,
  unauthenticated: Code.Unauthenticated,
  conflict: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
};

/** A Connect code as the protocol spells it ("invalid_argument"): error details and metrics use it. */
export const codeString = (code: Code): string => codeToString(code);

/** Each domain code's wire name, spelled once: SendEvent refusals are on the hot path. */
const WIRE_NAMES = Object.fromEntries(
  Object.entries(CODES).map(([domain, code]) => [domain, codeToString(code)]),
) as Record<ErrorCode, string>;

/** A domain error as the ErrorDetail of a per-item answer (a refused event of SendEvent). */
export function errorDetail(err: AppError): ErrorDetail {
  return create(ErrorDetailSchema, { code: WIRE_NAMES[err.code], message: err.message });
}

/**
 * A domain error as its Connect code; a database that cannot be reached as `unavailable` (the
 * client retries; `outage` logs it once per outage); anything else as `internal`, logged with its
 * cause and never shown.
 */
export function toConnectError(err: unknown, logger: Logger, procedure: string, outage?: OutageLog): ConnectError {
  if (err instanceof AppError) return new ConnectError(err.message, CODES[err.code]);
  if (err instanceof ConnectError) return err;
  if (isDatabaseUnavailable(err)) {
    if (outage) outage.failed(err);
    else logger.warn({ err, procedure }, "database unavailable");
    return new ConnectError(DATABASE_UNAVAILABLE, Code.Unavailable);
  }
  logger.error({ err, procedure }, "internal error");
  return new ConnectError("internal error", Code.Internal);
}

export const DATABASE_UNAVAILABLE = "the service cannot reach its database; retry shortly";

/**
 * Maps every error a handler (or a later interceptor) throws; unknown errors are logged, not shown.
 * A call that succeeds ends a database outage in `outage`'s log.
 */
export function errorInterceptor(logger: Logger, outage?: OutageLog): Interceptor {
  return (next) => async (req) => {
    try {
      const res = await next(req);
      outage?.ok();
      if (!res.stream) return res;
      // A streamed answer fails while it is read: map those errors too.
      const messages = res.message;
      const mapped = async function* () {
        try {
          yield* messages;
        } catch (err) {
          throw toConnectError(err, logger, req.method.name, outage);
        }
      };
      return { ...res, message: mapped() };
    } catch (err) {
      throw toConnectError(err, logger, req.method.name, outage);
    }
  };
}
