import type { IncomingMessage, ServerResponse } from "node:http";
import type { Meter } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { registerRuntimeMetrics } from "./runtime-metrics.js";

export type { Meter };

export interface Metrics {
  meter: Meter;
  /** Serves the Prometheus text format (mounted at /metrics). */
  handle(req: IncomingMessage, res: ServerResponse): void;
  shutdown(): Promise<void>;
}

export interface MetricsOptions {
  /** `service.instance.id`: which process of the service (default: none). */
  instanceId?: string;
  /** Process and runtime metrics (CPU, memory, heap, event loop, GC); on by default. */
  runtime?: boolean;
}

/**
 * OpenTelemetry metrics exported in the Prometheus format on the app's own HTTP port, not on a
 * listener of the exporter's. One provider per app, so tests with several apps keep theirs apart.
 * Every series carries `service_name` (and `service_instance_id`) from the resource.
 */
export function createMetrics(service: string, options: MetricsOptions = {}): Metrics {
  const exporter = new PrometheusExporter({
    preventServerStart: true,
    withResourceConstantLabels: /^service\.(name|instance\.id)$/,
  });
  const resource = resourceFromAttributes({
    "service.name": service,
    ...(options.instanceId ? { "service.instance.id": options.instanceId } : {}),
  });
  const provider = new MeterProvider({ resource, readers: [exporter] });
  const meter = provider.getMeter(service);
  const stopRuntime = options.runtime === false ? () => {} : registerRuntimeMetrics(meter);
  return {
    meter,
    handle: (req, res) => exporter.getMetricsRequestHandler(req, res),
    shutdown: () => {
      stopRuntime();
      return provider.shutdown();
    },
  };
}
