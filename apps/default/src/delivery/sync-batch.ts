import type { RoomEvent } from "@service-chat/api";
import type { EventRow } from "../db/schema.js";
import { presentEvent } from "../events/present.js";
import { EncodedEvents } from "./encoded-events.js";
import type { SeqRange, SyncReader, SyncRoom } from "./store.js";
import { planSyncPage, type SyncPlan } from "./sync-plan.js";

/** What the batcher reads with (DeliveryStore's two Sync statements). */
export interface SyncReads {
  syncRooms(readers: readonly SyncReader[]): Promise<(SyncRoom & { reader: number })[]>;
  eventsIn(ranges: readonly SeqRange[]): Promise<EventRow[]>;
}

/** How Syncs are read together (docs/delivery.md, "Sync"). */
export interface SyncBatchLimits {
  /** Batches reading at once; each holds one pooled connection for two statements. */
  inFlight: number;
  /** Devices per batch. */
  maxDevices: number;
  /**
   * Events per batch, shared out evenly: with n devices in a batch, each page holds at most
   * max(1, maxEvents / n) events (and at most the page size it asked for); the rest comes with
   * `has_more` on the device's next call, which waits its turn behind the devices already waiting.
   */
  maxEvents: number;
  /** Events per room replayed at most; a device further behind gets `resync` (SYNC_MAX_BACKLOG). */
  maxBacklog: number;
}

/** One device's Sync, checked and ready to read. */
export interface SyncRequest {
  reader: SyncReader;
  /** Positions the device gave, by room. */
  given: ReadonlyMap<string, number>;
  limit: number;
}

export interface SyncAnswer {
  plan: SyncPlan;
  /** The page's events, per room in seq order, rooms in plan order. */
  events: PageEvent[];
}

/**
 * An event of a batch's pages: one object for every page of the batch that holds it, presented
 * (a RoomEvent, for Sync) or encoded (its binary form, for SyncDevices) only when asked, once.
 */
export class PageEvent {
  private presented?: RoomEvent;

  constructor(
    readonly row: EventRow,
    private readonly encoded: EncodedEvents,
  ) {}

  get event(): RoomEvent {
    this.presented ??= presentEvent(this.row);
    return this.presented;
  }

  /** Its binary form, kept across batches while the event is neither edited nor redacted (encoded-events.ts). */
  get bytes(): Uint8Array {
    return this.encoded.of(this.row, () => this.event);
  }
}

interface Waiting {
  request: SyncRequest;
  resolve(answer: SyncAnswer): void;
  reject(err: unknown): void;
}

/**
 * Concurrent Syncs read together, as concurrent sends are stored together (events/committer.ts):
 * calls that arrive while batches are being read wait, and the next batch reads all of them (up to
 * `maxDevices`) with two statements — every device's rooms and cursors, then the events of every
 * page, each room's events read once however many devices of the batch need them, and each event
 * presented once. There is no timer: a call that finds a free slot is read at once, alone.
 *
 * Fair rather than first come, first served: the devices of a batch share its event budget evenly,
 * so a device far behind gets a page its size, not a page that makes everyone behind it wait, and
 * asks for its next page behind those already waiting.
 */
export class SyncBatcher {
  private readonly waiting: Waiting[] = [];
  private running = 0;

  constructor(
    private readonly reads: SyncReads,
    private readonly limits: SyncBatchLimits,
    private readonly encoded = new EncodedEvents(),
  ) {}

  /** Batches being read now, and Syncs waiting for the next one. */
  get load(): { running: number; queued: number } {
    return { running: this.running, queued: this.waiting.length };
  }

  read(request: SyncRequest): Promise<SyncAnswer> {
    return this.readMany([request])[0] as Promise<SyncAnswer>;
  }

  /** Several Syncs that arrived together (SyncDevices): queued at once, so they are read in the same batch. */
  readMany(requests: readonly SyncRequest[]): Promise<SyncAnswer>[] {
    const answers = requests.map(
      (request) => new Promise<SyncAnswer>((resolve, reject) => this.waiting.push({ request, resolve, reject })),
    );
    this.start();
    return answers;
  }

  private start(): void {
    while (this.running < this.limits.inFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.limits.maxDevices);
      this.running++;
      void this.readBatch(batch).finally(() => {
        this.running--;
        this.start();
      });
    }
  }

  private async readBatch(batch: Waiting[]): Promise<void> {
    try {
      const answers = await this.answer(batch.map((w) => w.request));
      for (const [i, w] of batch.entries()) w.resolve(answers[i] as SyncAnswer);
    } catch (err) {
      for (const w of batch) w.reject(err);
    }
  }

  private async answer(requests: SyncRequest[]): Promise<SyncAnswer[]> {
    const rooms = await this.reads.syncRooms(requests.map((r) => r.reader));
    const byReader: SyncRoom[][] = requests.map(() => []);
    for (const row of rooms) byReader[row.reader]?.push(row);
    const share = Math.max(1, Math.floor(this.limits.maxEvents / requests.length));
    const plans = requests.map((r, i) =>
      planSyncPage(byReader[i] as SyncRoom[], r.given, Math.min(r.limit, share), this.limits.maxBacklog),
    );
    const rows = await this.reads.eventsIn(union(plans.flatMap((p) => p.ranges)));
    // Each room's events in seq order, each one object for every page that shows it.
    const byRoom = new Map<string, { seq: number; event: PageEvent }[]>();
    for (const row of rows) {
      const list = byRoom.get(row.room_id);
      const entry = { seq: row.seq, event: new PageEvent(row, this.encoded) };
      if (list) list.push(entry);
      else byRoom.set(row.room_id, [entry]);
    }
    for (const list of byRoom.values()) list.sort((a, b) => a.seq - b.seq);
    return plans.map((plan) => ({
      plan,
      events: plan.ranges.flatMap((g) => slice(byRoom.get(g.roomId) ?? [], g.after, g.upTo)),
    }));
  }
}

/** The ranges merged per room where they overlap or touch, so no event is read twice. */
export function union(ranges: readonly SeqRange[]): SeqRange[] {
  const sorted = [...ranges].sort((a, b) => (a.roomId < b.roomId ? -1 : a.roomId > b.roomId ? 1 : a.after - b.after));
  const out: SeqRange[] = [];
  for (const g of sorted) {
    const last = out.at(-1);
    if (last && last.roomId === g.roomId && g.after <= last.upTo) last.upTo = Math.max(last.upTo, g.upTo);
    else out.push({ ...g });
  }
  return out;
}

/** The events with `after < seq <= upTo` of a room's events sorted by seq. */
function slice(list: readonly { seq: number; event: PageEvent }[], after: number, upTo: number): PageEvent[] {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((list[mid] as { seq: number }).seq <= after) lo = mid + 1;
    else hi = mid;
  }
  const out: PageEvent[] = [];
  for (let i = lo; i < list.length && (list[i] as { seq: number }).seq <= upTo; i++)
    out.push((list[i] as { event: PageEvent }).event);
  return out;
}
