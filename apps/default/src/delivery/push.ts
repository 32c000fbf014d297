import { createHmac } from "node:crypto";
import { CallAction, type RoomEvent, RoomEventType } from "@service-chat/api";
import { type ConnectionRegistry, type Logger, newId, raceAbort, type Service } from "@service-chat/core";
import type { Db } from "../events/store.js";
import type { Member } from "./membership.js";
import type { PipelineMetrics } from "./metrics.js";

export interface PushOptions {
  url: string;
  secret: string;
  registry: ConnectionRegistry;
  db: Db;
  logger: Logger;
  metrics?: PipelineMetrics;
  /** Attempts before a notification becomes a dead letter. */
  maxAttempts?: number;
  /** First retry delay; each retry doubles it (with jitter). */
  baseDelayMs?: number;
  /** Notifications waiting at most; beyond, new ones go straight to the dead letters. */
  maxQueue?: number;
}

/** The JSON body a push webhook receives. */
export interface PushPayload {
  type: "chat.event";
  room_id: string;
  event_id: string;
  seq: string;
  sender: string;
  event_type: string;
  /** The first 140 characters of text, or the attachment's filename; never for encrypted events. */
  preview?: string;
  /** Members with no live connection. */
  recipients: string[];
}

interface Job {
  payload: PushPayload;
  attempts: number;
  due: number;
}

const PREVIEW_CHARS = 140;
const CONCURRENCY = 8;

/**
 * Calls the push webhook for members with no live connection: a small JSON body signed with
 * HMAC-SHA256 (`X-Chat-Signature: t=<unix s>,v1=<hex of HMAC(secret, "<t>.<body>")>`). Failures
 * are retried with exponential backoff; after the last attempt the notification is kept in
 * push_dead_letters, from where an admin can replay it. Retries in progress live in memory: a
 * restart forgets them (the message itself is safe in history; only the nudge is lost).
 */
export class PushNotifier implements Service {
  readonly name = "push";
  private readonly queue: Job[] = [];
  private readonly waiters = new Set<() => void>();
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxQueue: number;

  constructor(private readonly o: PushOptions) {
    this.maxAttempts = o.maxAttempts ?? 6;
    this.baseDelayMs = o.baseDelayMs ?? 1000;
    this.maxQueue = o.maxQueue ?? 10_000;
  }

  /** Called by fan-out for every event: queues a notification if the event deserves one. */
  notify(event: RoomEvent, recipients: Member[]): void {
    const sender = event.source?.profileId ?? "";
    const to = recipients.map((m) => m.profileId).filter((p) => p !== sender);
    if (to.length === 0 || !worthPushing(event)) return;
    this.enqueue(payloadOf(event, to), 0);
  }

  /** Sends dead letters again, as new notifications. */
  replay(payloads: PushPayload[]): void {
    for (const p of payloads) this.enqueue(p, 0);
  }

  async run(signal: AbortSignal): Promise<void> {
    const workers = Array.from({ length: CONCURRENCY }, () => this.work(signal));
    signal.addEventListener("abort", () => this.wake(), { once: true });
    await Promise.all(workers);
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
    if (this.queue.length >= this.maxQueue) {
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
    if (offline.length === 0) return;
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
      if (res.ok) return;
      error = `webhook answered ${res.status}`;
    } catch (err) {
      error = `webhook unreachable: ${(err as Error).name}`;
    }
    const attempts = job.attempts + 1;
    if (attempts >= this.maxAttempts) return this.deadLetter({ ...job, payload, attempts }, error);
    const delay = this.baseDelayMs * 2 ** job.attempts * (0.8 + Math.random() * 0.4);
    this.enqueue(payload, attempts, Date.now() + delay);
  }

  private async deadLetter(job: Job, error: string): Promise<void> {
    this.o.logger.warn({ event: job.payload.event_id, attempts: job.attempts, error }, "push dead-lettered");
    await this.o.db
      .insertInto("push_dead_letters")
      .values({
        id: newId(),
        room_id: job.payload.room_id,
        event_id: job.payload.event_id,
        payload: JSON.stringify(job.payload),
        attempts: job.attempts,
        last_error: error,
      })
      .execute();
    const count = await this.o.db
      .selectFrom("push_dead_letters")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    this.o.metrics?.deadLetters(Number(count.n));
  }
}

function worthPushing(e: RoomEvent): boolean {
  switch (e.content.case) {
    case "text":
    case "attachment":
    case "encrypted":
      return true;
    case "call":
      return e.content.value.action === CallAction.OFFER;
    default:
      return false;
  }
}

function payloadOf(e: RoomEvent, recipients: string[]): PushPayload {
  const c = e.content;
  const preview =
    c.case === "text" ? c.value.body.slice(0, PREVIEW_CHARS) : c.case === "attachment" ? c.value.filename : undefined;
  return {
    type: "chat.event",
    room_id: e.roomId,
    event_id: e.id,
    seq: String(e.seq),
    sender: e.source?.profileId ?? "",
    event_type: RoomEventType[e.type].toLowerCase(),
    ...(preview ? { preview } : {}),
    recipients,
  };
}
