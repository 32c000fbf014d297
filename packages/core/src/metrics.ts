import type { IncomingMessage, ServerResponse } from "node:http";
import type { Meter } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";

export type { Meter };

export interface Metrics {
  meter: Meter;
  /** Serves the Prometheus text format (mounted at /metrics). */
  handle(req: IncomingMessage, res: ServerResponse): void;
  shutdown(): Promise<void>;
}

/**
 * OpenTelemetry metrics exported in the Prometheus format on the app's own HTTP port, not on a
 * listener of the exporter's. One provider per app, so tests with several apps keep theirs apart.
 */
export function createMetrics(service: string): Metrics {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  return {
    meter: provider.getMeter(service),
    handle: (req, res) => exporter.getMetricsRequestHandler(req, res),
    shutdown: () => provider.shutdown(),
  };
}
