import { type Logger, type Service, sleep } from "@service-chat/core";
import type { PersonService } from "./person-service.js";

/** An erasure unfinished for this long is taken to have stopped with its process (docs/privacy.md). */
export const ERASURE_GRACE_SEC = 300;

/**
 * Finishes erasures whose process stopped half way (a crash, a restart, a lost connection), at
 * start and then every `intervalMs`, so an erasure completes even if nobody calls ErasePerson
 * again. Runs with the retention worker (role relay); several processes running it only repeat
 * idempotent steps.
 */
export class ErasureRecovery implements Service {
  readonly name = "erasure-recovery";

  constructor(
    private readonly person: PersonService,
    private readonly intervalMs: number,
    private readonly logger: Logger,
    private readonly graceSec = ERASURE_GRACE_SEC,
  ) {}

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.person.resumeUnfinished(this.graceSec);
      } catch (err) {
        this.logger.warn({ err }, "resuming unfinished erasures failed; retrying at the next interval");
      }
      await sleep(this.intervalMs, signal).catch(() => undefined);
    }
  }
}
