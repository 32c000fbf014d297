import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { AppError, type ErrorCode, type Logger } from "@service-chat/core";

/** The one place domain errors become protocol errors. */
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
      return await next(req);
    } catch (err) {
      throw toConnectError(err, logger, req.method.name);
    }
  };
}
