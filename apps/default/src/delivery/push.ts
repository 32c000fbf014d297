import { createHmac } from "node:crypto";
import type { RoomEvent } from "@service-chat/api";
import { type ConnectionRegistry, type Logger, raceAbort, type Service } from "@service-chat/core";
import { kindOfType } from "../events/kinds/index.js";
import type { Member } from "./membership.js";
import type { PipelineMetrics } from "./metrics.js";
import type { DeliveryStore } from "./store.js";

export interface PushOptions {
  url: string;
  secret: string;
  registry: ConnectionRegistry;
  store: DeliveryStore;
  logger: Logger;
  metrics?: PipelineMetrics;
  /** Attempts before a notification becomes a dead letter (PUSH_MAX_ATTEMPTS). */
  maxAttempts: number;
  /** First retry delay; each retry doubles it, with jitter (PUSH_RETRY_BASE_MS). */
  baseDelayMs: number;
  /** Notifications waiting at most; beyond, new ones go straight to the dead letters (PUSH_QUEUE_MAX). */
  maxQueue: number;
}

/** The JSON body a push webhook receives. */
export interface PushPayload {
  type: "chat.event";
  room_id: string;
  event_id: string;
  seq: string;
  sender: string;
  event_type: string;
  /** What the event's kind shows (events/kinds/): the first 140 characters of text, an attachment's filename; never for encrypted events. */
  preview?: string;
  /** Members with no live connection. */
  recipients: string[];
}

interface Job {
  payload: PushPayload;
  attempts: number;
  due: number;
  /** The push_retries row of a retry (claimed from the database). */
  retryId?: string;
}

const CONCURRENCY = 8;
/** Retries claimed from the database at a time. */
const CLAIM_BATCH = 100;
/** How long a claimed retry is this process's before it comes due again for anyone. */
const CLAIM_LEASE_MS = 60_000;

/**
 * Calls the push webhook for members with no live connection: a small JSON body signed with
 * HMAC-SHA256 (`X-Chat-Signature: t=<unix s>,v1=<hex of HMAC(secret, "<t>.<body>")>`). Failures
 * are retried with exponential backoff; after the last attempt the notification is kept in
 * push_dead_letters, from where an admin can replay it. A notification waiting for a retry is kept
 * in the database (push_retries), and claimed when due by one of the processes that push, so a
 * restart loses none; a process that dies mid-attempt leaves it to come due again after its lease.
 */
export class PushNotifier implements Service {
  readonly name = "push";
  private readonly queue: Job[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(private readonly o: PushOptions) {}

  /** Called by fan-out for every event: queues a notification if the event's kind deserves one. */
  notify(event: RoomEvent, recipients: Member[]): void {
    const sender = event.source?.profileId ?? "";
    const to = recipients.map((m) => m.profileId).filter((p) => p !== sender);
    if (to.length === 0) return;
    const payload = payloadOf(event, to);
    if (payload) this.enqueue(payload, 0);
  }

  /** Sends dead letters again, as new notifications. */
  replay(payloads: PushPayload[]): void {
    for (const p of payloads) this.enqueue(p, 0);
  }

  async run(signal: AbortSignal): Promise<void> {
    const workers = Array.from({ length: CONCURRENCY }, () => this.work(signal));
    signal.addEventListener("abort", () => this.wake(), { once: true });
    await Promise.all([...workers, this.claimRetries(signal)]);
  }

  /** Takes the retries that are due from the database into the queue, while there is room for them. */
  private async claimRetries(signal: AbortSignal): Promise<void> {
    const period = Math.min(1000, this.o.baseDelayMs);
    let failing = false;
    while (!signal.aborted) {
      const room = Math.min(CLAIM_BATCH, this.o.maxQueue - this.queue.length);
      if (room > 0) {
        try {
          const claimed = await this.o.store.claimPushRetries(room, CLAIM_LEASE_MS);
          failing = false;
          for (const r of claimed) {
            this.queue.push({ payload: r.payload as PushPayload, attempts: r.attempts, due: 0, retryId: r.id });
          }
          if (claimed.length > 0) this.wake();
          if (claimed.length === room) continue;
        } catch (err) {
          if (!failing) this.o.logger.warn({ err }, "push retries cannot be read; trying again");
          failing = true;
        }
      }
      await this.idle(period, signal);
    }
  }

  /** Waits until woken by new work, `ms` passed, or `signal` aborted. */
  private async idle(ms: number, signal: AbortSignal): Promise<void> {
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
      this.waiters.add(resolve);
    });
    const timer = setTimeout(wake, ms);
    await raceAbort(woken, signal);
    clearTimeout(timer);
    this.waiters.delete(wake);
  }

  private wake(): void {
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  private enqueue(payload: PushPayload, attempts: number, due = Date.now()): void {
    if (this.queue.length >= this.o.maxQueue) {
      void this.deadLetter({ payload, attempts, due }, "push queue full");
      return;
    }
    this.queue.push({ payload, attempts, due });
    this.wake();
  }

  private async work(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const now = Date.now();
      const i = this.queue.findIndex((j) => j.due <= now);
      if (i < 0) {
        const next = Math.min(...this.queue.map((j) => j.due), now + 1000);
        await this.idle(next - now, signal);
        continue;
      }
      const [job] = this.queue.splice(i, 1) as [Job];
      await this.attempt(job).catch((err: unknown) => this.o.logger.error({ err }, "push failed"));
    }
  }

  private async attempt(job: Job): Promise<void> {
    const online = await this.o.registry.online(job.payload.recipients);
    const offline = job.payload.recipients.filter((p) => !online.has(p));
    if (offline.length === 0) {
      if (job.retryId) await this.o.store.deletePushRetry(job.retryId);
      return;
    }
    const payload = { ...job.payload, recipients: offline };
    const body = JSON.stringify(payload);
    const t = Math.floor(Date.now() / 1000);
    const signature = createHmac("sha256", this.o.secret).update(`${t}.${body}`).digest("hex");
    let error: string;
    try {
      const res = await fetch(this.o.url, {
        method: "POST",
        headers: { "content-type": "application/json", "x-chat-signature": `t=${t},v1=${signature}` },
        body,
        signal: AbortSignal.timeout(10_000),
      });
      await res.arrayBuffer().catch(() => {});
      if (res.ok) {
        if (job.retryId) await this.o.store.deletePushRetry(job.retryId);
        return;
      }
      error = `webhook answered ${res.status}`;
    } catch (err) {
      error = `webhook unreachable: ${(err as Error).name}`;
    }
    const attempts = job.attempts + 1;
    if (attempts >= this.o.maxAttempts) {
      await this.deadLetter({ ...job, payload, attempts }, error);
      if (job.retryId) await this.o.store.deletePushRetry(job.retryId);
      return;
    }
    const delay = this.o.baseDelayMs * 2 ** job.attempts * (0.8 + Math.random() * 0.4);
    await this.o.store
      .savePushRetry({
        ...(job.retryId ? { id: job.retryId } : {}),
        room_id: payload.room_id,
        event_id: payload.event_id,
        payload,
        attempts,
        last_error: error,
        dueAt: new Date(Date.now() + delay),
      })
      .catch((err: unknown) => {
        // The database is out of reach too: keep the retry in memory rather than lose it.
        this.o.logger.warn({ err, event: payload.event_id }, "push retry kept in memory only");
        this.enqueue(payload, attempts, Date.now() + delay);
      });
  }

  private async deadLetter(job: Job, error: string): Promise<void> {
    this.o.logger.warn({ event: job.payload.event_id, attempts: job.attempts, error }, "push dead-lettered");
    const count = await this.o.store.addDeadLetter({
      room_id: job.payload.room_id,
      event_id: job.payload.event_id,
      payload: job.payload,
      attempts: job.attempts,
      last_error: error,
    });
    this.o.metrics?.deadLetters(count);
  }
}

/** The notification of an event, if its kind deserves one (its descriptor's `push`). */
function payloadOf(e: RoomEvent, recipients: string[]): PushPayload | undefined {
  const kind = kindOfType(e.type);
  const push = kind && e.content.case === kind.name ? kind.push?.(e.content.value) : undefined;
  if (!kind || !push) return undefined;
  return {
    type: "chat.event",
    room_id: e.roomId,
    event_id: e.id,
    seq: String(e.seq),
    sender: e.source?.profileId ?? "",
    event_type: kind.name,
    ...(push.preview ? { preview: push.preview } : {}),
    recipients,
  };
}
