import type { Meter } from "@service-chat/core";

/**
 * What the gateway reports: the connections it holds (the figure an autoscaler scales gateways
 * on, beside the limit it is held to) and the connections it refused.
 */
export class GatewayMetrics {
  private readonly refusedTotal;

  constructor(meter: Meter, connections: () => number, limit: number) {
    meter
      .createObservableGauge("chat_gateway_connections", {
        description: "Device connections this gateway process holds (WebSocket and HTTP/2, hello included)",
      })
      .addCallback((r) => r.observe(connections()));
    meter
      .createObservableGauge("chat_gateway_connections_limit", {
        description: "Device connections this gateway process holds at most (MAX_CONNECTIONS)",
      })
      .addCallback((r) => r.observe(limit));
    this.refusedTotal = meter.createCounter("chat_gateway_refused_connections_total", {
      description: "Device connections refused at once: full (4010) or shutting down (4007)",
    });
  }

  refused(reason: "full" | "shutdown"): void {
    this.refusedTotal.add(1, { reason });
  }
}
