import { Code, ConnectError, type Interceptor, type StreamResponse, type UnaryResponse } from "@connectrpc/connect";

/**
 * Honours the caller's deadline (`connect-timeout-ms`, `grpc-timeout`): a unary call still running
 * when it passes is answered `deadline_exceeded` at once instead of whenever its work ends (the
 * work's own signal is aborted too, and what it stored anyway is found again by a retry with the
 * same client id). A call whose deadline has already passed does not start. Calls without a
 * deadline pass straight through.
 */
export function deadlineInterceptor(): Interceptor {
  return (next) => (req) => {
    if (req.stream || !(req.header.has("connect-timeout-ms") || req.header.has("grpc-timeout"))) return next(req);
    const { signal } = req;
    const refusal = () => {
      const reason = ConnectError.from(signal.reason);
      return reason.code === Code.DeadlineExceeded ? reason : new ConnectError("the call was canceled", Code.Canceled);
    };
    if (signal.aborted) return Promise.reject(refusal());
    // One promise settled by whichever comes first, the call's answer or the signal (cheaper
    // than racing the call against a second promise: this is on every call with a deadline).
    return new Promise<UnaryResponse | StreamResponse>((resolve, reject) => {
      const onAbort = () => reject(refusal());
      signal.addEventListener("abort", onAbort, { once: true });
      next(req).then(
        (res) => {
          signal.removeEventListener("abort", onAbort);
          resolve(res);
        },
        (err: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      );
    });
  };
}
