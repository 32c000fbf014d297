import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/**
 * Honours the caller's deadline (`connect-timeout-ms`, `grpc-timeout`): a unary call still running
 * when it passes is answered `deadline_exceeded` at once instead of whenever its work ends (the
 * work's own signal is aborted too, and what it stored anyway is found again by a retry with the
 * same client id). A call whose deadline has already passed does not start. Calls without a
 * deadline pass straight through.
 */
export function deadlineInterceptor(): Interceptor {
  return (next) => async (req) => {
    if (req.stream || !(req.header.has("connect-timeout-ms") || req.header.has("grpc-timeout"))) return next(req);
    const { signal } = req;
    const refusal = () => {
      const reason = ConnectError.from(signal.reason);
      return reason.code === Code.DeadlineExceeded ? reason : new ConnectError("the call was canceled", Code.Canceled);
    };
    if (signal.aborted) throw refusal();
    let onAbort!: () => void;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(refusal());
      signal.addEventListener("abort", onAbort, { once: true });
    });
    aborted.catch(() => {}); // an abort after the call settled is nobody's error
    try {
      return await Promise.race([next(req), aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  };
}
