import { type Context, context, type Link, type Span, SpanKind, type Tracer, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";

export { type Context, type Span, SpanKind };

export interface TracingOptions {
  serviceName: string;
  instanceId: string;
  /** OTLP/HTTP traces URL (…/v1/traces). */
  url: string;
  /** Share of new traces kept (0–1); a trace started elsewhere follows its parent's decision. */
  sampleRatio: number;
}

/** A `traceparent` value (W3C Trace Context): how a trace crosses processes and queues. */
export type TraceParent = string;

const propagator = new W3CTraceContextPropagator();
const setter = { set: (carrier: Record<string, string>, key: string, value: string) => (carrier[key] = value) };
const getter = {
  get: (carrier: Record<string, string | undefined>, key: string) => carrier[key],
  keys: (carrier: Record<string, string | undefined>) => Object.keys(carrier),
};

let contextManagerSet = false;

interface Provider {
  getTracer(name: string): Tracer;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** Opens tracing: the SDK and the exporter are loaded only here, so a process without tracing never loads them. */
export async function openTracing(o: TracingOptions): Promise<Tracing> {
  const [{ AsyncLocalStorageContextManager }, { OTLPTraceExporter }, { resourceFromAttributes }, sdk] =
    await Promise.all([
      import("@opentelemetry/context-async-hooks"),
      import("@opentelemetry/exporter-trace-otlp-http"),
      import("@opentelemetry/resources"),
      import("@opentelemetry/sdk-trace-base"),
    ]);
  if (!contextManagerSet) {
    // The one global piece: which context is active, carried across awaits.
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    contextManagerSet = true;
  }
  const provider = new sdk.BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": o.serviceName, "service.instance.id": o.instanceId }),
    sampler: new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(o.sampleRatio) }),
    spanProcessors: [new sdk.BatchSpanProcessor(new OTLPTraceExporter({ url: o.url }), { scheduledDelayMillis: 1000 })],
  });
  return new Tracing(provider);
}

/**
 * Traces of one process, exported over OTLP/HTTP. Tracing is off unless an endpoint is configured
 * (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): then the app holds no
 * Tracing at all, and every traced part checks for it before doing anything, so the message path
 * allocates nothing for traces. The provider is not registered globally: several apps in one
 * process (tests) keep their own.
 */
export class Tracing {
  readonly tracer: Tracer;

  constructor(private readonly provider: Provider) {
    this.tracer = provider.getTracer("service-chat");
  }

  /** Runs `work` in a new span (child of the active one, or of `parent`), ending it when `work` settles. */
  async span<T>(
    name: string,
    options: {
      kind?: SpanKind;
      parent?: TraceParent | Context;
      links?: Link[];
      attributes?: Record<string, string | number>;
    },
    work: (span: Span) => Promise<T>,
  ): Promise<T> {
    const parent = typeof options.parent === "string" ? extract(options.parent) : (options.parent ?? context.active());
    const span = this.tracer.startSpan(
      name,
      {
        ...(options.kind !== undefined ? { kind: options.kind } : {}),
        ...(options.links ? { links: options.links } : {}),
        ...(options.attributes ? { attributes: options.attributes } : {}),
      },
      parent,
    );
    try {
      return await context.with(trace.setSpan(parent, span), () => work(span));
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: 2, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  }

  /** Sends what is buffered (tests, shutdown). */
  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}

/** The context carried by a `traceparent` value (the root context when it is not one). */
export function extract(traceparent: TraceParent | undefined | null, tracestate?: string | null): Context {
  if (!traceparent) return context.active();
  return propagator.extract(context.active(), { traceparent, ...(tracestate ? { tracestate } : {}) }, getter);
}

/** The active span's `traceparent`, or undefined when no sampled span is active. */
export function currentTraceParent(ctx: Context = context.active()): TraceParent | undefined {
  const span = trace.getSpanContext(ctx);
  if (!span || (span.traceFlags & 1) === 0) return undefined;
  const carrier: Record<string, string> = {};
  propagator.inject(ctx, carrier, setter);
  return carrier.traceparent;
}

/** A link to the span of a `traceparent` (a batch span links the spans of what it carries). */
export function linkTo(traceparent: TraceParent): Link | undefined {
  const spanContext = trace.getSpanContext(extract(traceparent));
  return spanContext ? { context: spanContext } : undefined;
}

/** The traces URL from the standard variables: the traces endpoint as is, or the base endpoint + /v1/traces. */
export function otlpTracesUrl(env: {
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string;
}) {
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) return `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/$/, "")}/v1/traces`;
  return undefined;
}
