import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { type ErrorDetail, ErrorDetailSchema } from "@service-chat/api";
import { AppError, type ErrorCode, type Logger } from "@service-chat/core";

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

export function toConnectError(err: unknown, logger: Logger, procedure: string): ConnectError {
  if (err instanceof AppError) return new ConnectError(err.message, CODES[err.code]);
  if (err instanceof ConnectError) return err;
  logger.error({ err, procedure }, "internal error");
  return new ConnectError("internal error", Code.Internal);
}

/** Maps every error a handler (or a later interceptor) throws; unknown errors are logged, not shown. */
export function errorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      const res = await next(req);
      if (!res.stream) return res;
      // A streamed answer fails while it is read: map those errors too.
      const messages = res.message;
      const mapped = async function* () {
        try {
          yield* messages;
        } catch (err) {
          throw toConnectError(err, logger, req.method.name);
        }
      };
      return { ...res, message: mapped() };
    } catch (err) {
      throw toConnectError(err, logger, req.method.name);
    }
  };
}
