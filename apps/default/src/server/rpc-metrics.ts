import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { Meter } from "@service-chat/core";

export const RPC_DURATION_METRIC = "chat_rpc_server_duration_seconds";

/**
 * Upper bounds (seconds) of the RPC duration histogram: 0.25 ms to 10 s in steps of ×1.33 to ×2
 * (1, 1.5, 2, 3, 5, 7.5 per decade), so a p95 read from the buckets is off by less than one step;
 * 20 ms, the send path's latency target, is one of the bounds.
 */
export const RPC_DURATION_BUCKETS = [
  0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15,
  0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10,
];

type Attributes = { rpc_service: string; rpc_method: string; rpc_code: string };

/**
 * Times every unary RPC served through it: from the call of its handler (the request is read and
 * decoded by then) to its response or error, recorded in `chat_rpc_server_duration_seconds` with
 * `rpc_service`, `rpc_method` and `rpc_code` ("ok" or the Connect code name). Put it first, so it
 * sees the code the caller gets (after the error mapping) and includes auth. Streaming RPCs
 * (GatewayService.Connect, a device session) pass through unmeasured: their duration is a
 * session's length, not a latency. The attribute objects are made once per method and code.
 */
export function rpcMetricsInterceptor(meter: Meter): Interceptor {
  const duration = meter.createHistogram(RPC_DURATION_METRIC, {
    description: "Time a unary RPC took on the server, from its handler's start to its response, by method and code",
    unit: "s",
    advice: { explicitBucketBoundaries: RPC_DURATION_BUCKETS },
  });
  // Indexed by code: 0 is ok, 1–16 the Connect codes.
  const cache = new Map<DescMethod, Attributes[]>();
  const attributes = (method: DescMethod, code: Code | 0): Attributes => {
    let byCode = cache.get(method);
    if (!byCode) {
      byCode = [];
      cache.set(method, byCode);
    }
    let a = byCode[code];
    if (!a) {
      a = {
        rpc_service: method.parent.typeName,
        rpc_method: method.name,
        rpc_code: code === 0 ? "ok" : codeToString(code),
      };
      byCode[code] = a;
    }
    return a;
  };
  return (next) => async (req) => {
    if (req.stream) return next(req);
    const start = performance.now();
    try {
      const res = await next(req);
      duration.record((performance.now() - start) / 1000, attributes(req.method, 0));
      return res;
    } catch (err) {
      // What connect-node answers: a ConnectError's code, internal for anything else.
      const code = err instanceof ConnectError ? err.code : Code.Internal;
      duration.record((performance.now() - start) / 1000, attributes(req.method, code));
      throw err;
    }
  };
}
