/**
 * Where a message's time goes on its way to the devices, from the servers' own traces: a small
 * OTLP/HTTP (JSON) receiver that keeps every span it gets, and on Ctrl-C (or after --seconds=N)
 * prints, over every traced SendEvent, how long after the call began each stage of the pipeline
 * began and ended (the commit, the outbox relay's publish to the stream, the fan-out, and the
 * gateways writing the frames to their devices), as p50 / p95 / max.
 *
 *   npx tsx bench/trace-stages.ts [--port=4318] [--seconds=N]
 *   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_TRACES_SAMPLER_ARG=1 npm run bench -- --only=idle
 *
 * The servers export in batches about once a second: stop it a few seconds after the run.
 */
import http from "node:http";
import { Histogram } from "./lib/hist.js";

interface Span {
  name: string;
  trace: string;
  /** ms since the epoch. */
  start: number;
  end: number;
}

interface OtlpSpan {
  name: string;
  traceId: string;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
}

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const port = Number(arg("port") ?? 4318);
const seconds = arg("seconds");
const spans: Span[] = [];
const ms = (nano: string | number) => Number(BigInt(nano) / 1000n) / 1000;

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/v1/traces" || !req.headers["content-type"]?.includes("json")) {
    res.writeHead(415).end("this receiver takes OTLP/HTTP JSON on POST /v1/traces only");
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        resourceSpans?: { scopeSpans?: { spans?: OtlpSpan[] }[] }[];
      };
      for (const rs of body.resourceSpans ?? [])
        for (const ss of rs.scopeSpans ?? [])
          for (const s of ss.spans ?? [])
            spans.push({
              name: s.name,
              trace: s.traceId,
              start: ms(s.startTimeUnixNano),
              end: ms(s.endTimeUnixNano),
            });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    } catch {
      res.writeHead(400).end("not OTLP JSON");
    }
  });
});

/** The stages of one traced SendEvent, each as [start, end] in ms after the call began. */
function stages(trace: Span[]): Map<string, [number, number]> | undefined {
  const call = trace.find((s) => s.name.endsWith("/SendEvent"));
  if (!call) return undefined;
  const out = new Map<string, [number, number]>();
  const at = (s: Span): [number, number] => [s.start - call.start, s.end - call.start];
  out.set("SendEvent (the call)", at(call));
  for (const name of ["send.commit", "outbox.publish", "fanout"]) {
    const s = trace.find((x) => x.name === name);
    if (s) out.set(name, at(s));
  }
  const deliver = trace.filter((s) => s.name === "gateway.deliver");
  if (deliver.length > 0) {
    out.set("gateway.deliver, first gateway", at(deliver.reduce((a, b) => (b.start < a.start ? b : a))));
    out.set("gateway.deliver, last gateway", at(deliver.reduce((a, b) => (b.end > a.end ? b : a))));
  }
  return out;
}

function report(): void {
  const byTrace = new Map<string, Span[]>();
  for (const s of spans) {
    const trace = byTrace.get(s.trace);
    if (trace) trace.push(s);
    else byTrace.set(s.trace, [s]);
  }
  const hists = new Map<string, [Histogram, Histogram]>();
  let traced = 0;
  for (const trace of byTrace.values()) {
    const st = stages(trace);
    if (!st) continue;
    traced++;
    for (const [name, [start, end]] of st) {
      const h = hists.get(name) ?? [new Histogram(), new Histogram()];
      h[0].record(start);
      h[1].record(end);
      hists.set(name, h);
    }
  }
  const f = (x: number) => x.toFixed(1).padStart(6);
  console.log(`${spans.length} spans, ${traced} traced SendEvent calls; ms after the call began, p50 / p95 / max`);
  console.log(`${"stage".padEnd(34)}${"began".padEnd(24)}ended`);
  for (const [name, [b, e]] of hists) {
    const sb = b.summary();
    const se = e.summary();
    console.log(
      `${name.padEnd(34)}${f(sb.p50)} /${f(sb.p95)} /${f(sb.max)}   ${f(se.p50)} /${f(se.p95)} /${f(se.max)}`,
    );
  }
}

server.listen(port, "127.0.0.1", () => console.log(`OTLP/HTTP JSON receiver on http://127.0.0.1:${port}`));
const stop = () => {
  report();
  server.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
if (seconds) setTimeout(stop, Number(seconds) * 1000);
