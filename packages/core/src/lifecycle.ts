import type { Logger } from "./logger.js";

/** A long-running part of the system: it runs until `signal` aborts, then returns once it has stopped. */
export interface Service {
  readonly name: string;
  run(signal: AbortSignal): Promise<void>;
  /**
   * Cuts short a wait this service makes on its way down (none by default), when the operator asks
   * again; answers whether it was waiting.
   */
  hurry?(): boolean;
}

export interface Running {
  /** Stops every service (in reverse start order) and resolves when all have returned. */
  stop(): Promise<void>;
  /** Resolves when every service has returned (after stop, or because one failed). */
  done: Promise<void>;
  /** The error of the first service that failed, if one did: the process should exit non-zero. */
  readonly failure: Error | undefined;
  /** After stop: ends the waits services make before draining; answers whether any was waiting. */
  hurry(): boolean;
}

/**
 * Starts services together; stopping them (or the failure of any one) aborts each in
 * reverse order of start, so servers stop taking work before what they depend on goes.
 */
export function startServices(services: Service[], logger: Logger): Running {
  const controllers = services.map(() => new AbortController());
  let failure: Error | undefined;
  const runs = services.map((service, i) =>
    service.run((controllers[i] as AbortController).signal).then(
      () => logger.debug({ service: service.name }, "service stopped"),
      (err: unknown) => {
        logger.error({ service: service.name, err }, "service failed");
        failure ??= err instanceof Error ? err : new Error(`${service.name} failed: ${String(err)}`);
        void stop();
      },
    ),
  );
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      for (let i = services.length - 1; i >= 0; i--) {
        (controllers[i] as AbortController).abort();
        await runs[i];
      }
    })();
    return stopping;
  };
  return {
    stop,
    hurry: () => stopping !== undefined && services.map((s) => s.hurry?.() ?? false).includes(true),
    done: Promise.all(runs).then(() => undefined),
    get failure() {
      return failure;
    },
  };
}

/**
 * Stops `running` on SIGTERM or SIGINT. A second signal during the wait before draining ends the
 * wait (the drain stays graceful); any other second signal, or a third, exits at once.
 */
export function stopOnSignals(running: Running, logger: Logger): void {
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      logger.info({ signal: sig }, "shutting down");
      void running.stop();
    } else if (signals === 2 && running.hurry()) {
      logger.info({ signal: sig }, "shutting down now: the wait before draining is cut short");
    } else {
      process.exit(1);
    }
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

/** Resolves when `signal` aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/**
 * Runs `work` unless `signal` aborts first; answers whether it finished. The abort listener is
 * removed afterwards, so calling this in a loop leaks nothing.
 */
export async function raceAbort<T>(
  work: Promise<T>,
  signal: AbortSignal,
): Promise<{ done: true; value: T } | { done: false }> {
  if (signal.aborted) return { done: false };
  let onAbort!: () => void;
  const stopped = new Promise<{ done: false }>((resolve) => {
    onAbort = () => resolve({ done: false });
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([work.then((value) => ({ done: true as const, value })), stopped]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    // An abort that already happened fires no event: resolve at once rather than after `ms`.
    if (signal?.aborted) return done();
    signal?.addEventListener("abort", done, { once: true });
  });
}
