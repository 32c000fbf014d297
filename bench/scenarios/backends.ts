import { type Backend, type Ctx, freshDb, launch, queueName } from "../lib/context.js";
import { type FanRun, fanOut } from "./fanout.js";
import { type SendStep, sendPath } from "./send.js";

export interface BackendRun {
  backend: Backend;
  /** "measured" here, or "scenarios 1-2" when the main run's figures (on NATS) stand for it. */
  source: string;
  single: SendStep;
  batched: SendStep;
  fanout: FanRun;
}

/** The rates the backends are compared at: the main run's highest sustained rate and the one below it. */
function comparisonRates(ctx: Ctx, main: { ours: FanRun } | undefined): number[] {
  const rates = ctx.profile.fanout.rates;
  const best = main?.ours.maxSustainedRate ?? 0;
  const i = Math.max(0, rates.indexOf(best));
  return rates.slice(Math.max(0, i - ctx.profile.backends.fanRates + 1), i + 1);
}

/**
 * Scenario 6: the send path and the fan-out of a 1,000-member room (shortened) with each queue
 * backend. With mem:// the whole system is one process and the registry is in memory too.
 */
export async function backends(ctx: Ctx, results: Record<string, unknown>): Promise<BackendRun[]> {
  const main = (results.fanout as { ours: FanRun }[] | undefined)?.[0];
  const mainSend = results.send as { single: SendStep; batched: SendStep } | undefined;
  const rates = comparisonRates(ctx, main);
  const out: BackendRun[] = [];
  for (const backend of ["mem", "nats", "redis"] as Backend[]) {
    if (!ctx.profile.backends.list.includes(backend)) {
      if (backend === "nats" && main && mainSend) {
        out.push({
          backend,
          source: "scenarios 1-2",
          single: mainSend.single,
          batched: mainSend.batched,
          fanout: { ...main.ours, steps: main.ours.steps.filter((s) => rates.includes(s.rate)) },
        });
      }
      continue;
    }
    const db = await freshDb(ctx, `be_${backend}`);
    const server = await launch(ctx, {
      name: `service-chat (${backend}://)`,
      dbUri: db.uri,
      backend,
      queue: queueName(ctx, backend),
      cache: backend === "mem" ? "mem" : "redis",
    });
    try {
      const send = await sendPath(ctx, server, { short: true, label: `${backend}` });
      const fan = await fanOut(ctx, server, 1000, {
        rates,
        stepMs: ctx.profile.backends.stepMs,
        baseline: false,
        tag: `be-${backend}`,
      });
      out.push({ backend, source: "measured", single: send.single, batched: send.batched, fanout: fan.ours });
    } finally {
      await server.proc.stop();
    }
  }
  return out;
}
