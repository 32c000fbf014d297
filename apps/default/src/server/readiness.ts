import http2 from "node:http2";
import { aborted, type Logger, type Meter, type Service, sleep } from "@service-chat/core";

/** One dependency of this process: resolves when it answers now, rejects naming what is wrong. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

export interface ReadinessReport {
  ready: boolean;
  /** Each dependency: "ok", or why it is not. "draining" while the process shuts down. */
  checks: Record<string, string>;
}

/** How long one check may take before it counts as unreachable. */
const CHECK_TIMEOUT_MS = 2000;

/**
 * Readiness: every dependency of this process's roles checked at once (database and migrations,
 * queue, registry, the Default Service of a gateway-only process), each within 2 s. It is also the
 * first service to stop: on shutdown it turns not ready, waits `unreadyMs` so that load balancers
 * stop sending traffic (or until `hurry`), and only then do the gateway and servers start draining.
 */
export class Readiness implements Service {
  readonly name = "readiness";
  private draining = false;
  /** The last state reported, to log changes (readiness flapping) once each. */
  private lastReady: boolean | undefined;
  private readonly changes?: { add(n: number): void };
  /** Set while the unready wait runs: ends it. */
  private endWait: (() => void) | undefined;

  constructor(
    private readonly checks: ReadinessCheck[],
    private readonly unreadyMs: number,
    private readonly logger: Logger,
    meter?: Meter,
  ) {
    if (!meter) return;
    meter
      .createObservableGauge("chat_ready", { description: "1 when the last /readyz answered ready, else 0" })
      .addCallback((r) => {
        if (this.lastReady !== undefined) r.observe(this.lastReady ? 1 : 0);
      });
    this.changes = meter.createCounter("chat_readiness_changes_total", {
      description: "Times /readyz changed its answer (ready to not ready or back)",
    });
  }

  async report(): Promise<ReadinessReport> {
    const results = await Promise.all(this.checks.map(async (c) => [c.name, await outcome(c)] as const));
    const checks = Object.fromEntries(results);
    if (this.draining) checks.process = "draining";
    const ready = Object.values(checks).every((v) => v === "ok");
    if (ready !== this.lastReady) {
      if (this.lastReady !== undefined) this.changes?.add(1);
      if (this.lastReady !== undefined || !ready) {
        (ready ? this.logger.info.bind(this.logger) : this.logger.warn.bind(this.logger))(
          { checks },
          ready ? "ready" : "not ready",
        );
      }
      this.lastReady = ready;
    }
    return { ready, checks };
  }

  async run(signal: AbortSignal): Promise<void> {
    await aborted(signal);
    this.draining = true;
    this.logger.info({ wait_ms: this.unreadyMs }, "not ready: draining starts after the wait");
    const cut = new AbortController();
    this.endWait = () => cut.abort();
    await sleep(this.unreadyMs, cut.signal);
    this.endWait = undefined;
  }

  /** Ends the unready wait now (a second SIGTERM); answers whether it was running. */
  hurry(): boolean {
    const end = this.endWait;
    this.endWait = undefined;
    end?.();
    return end !== undefined;
  }
}

async function outcome(c: ReadinessCheck): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${CHECK_TIMEOUT_MS} ms`), CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([c.check().then(() => "ok"), timeout]);
  } catch (err) {
    return (err as Error).message || "unreachable";
  } finally {
    clearTimeout(timer);
  }
}

/** A check that fails with `message` (no internals) whenever `probe` fails. */
export const check = (name: string, message: string, probe: () => Promise<unknown>): ReadinessCheck => ({
  name,
  check: () =>
    probe().then(
      () => undefined,
      () => {
        throw new Error(message);
      },
    ),
});

/** The Default Service a gateway-only process forwards to: its own /readyz over h2c answers 200. */
export function remoteReady(uri: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(uri);
    session.on("error", reject);
    session.setTimeout(CHECK_TIMEOUT_MS, () => {
      session.destroy();
      reject(new Error("no answer"));
    });
    const req = session.request({ ":path": "/readyz" });
    req.on("response", (headers) => {
      const status = headers[":status"];
      req.resume();
      session.close();
      if (status === 200) resolve();
      else reject(new Error(`answered ${status}`));
    });
    req.on("error", (err) => {
      session.close();
      reject(err);
    });
    req.end();
  });
}
