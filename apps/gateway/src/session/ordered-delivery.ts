import { create, toBinary } from "@bufbuild/protobuf";
import {
  type RoomCursor,
  type RoomEvent,
  type ServerFrame,
  ServerFrameSchema,
  type SyncResponse,
} from "@service-chat/api";
import type { Logger } from "@service-chat/core";
import { DISCONNECT, type Disconnect, RoomSequencer } from "@service-chat/protocol";
import { EncodedEvent } from "./encoded-event.js";

/** What the ordered delivery needs of its session. */
export interface DeliveryTarget {
  /** For the session's log lines. */
  readonly connectionId?: string;
  /** One Sync page from these positions. */
  sync(cursors: RoomCursor[], limit: number): Promise<SyncPage>;
  /** Writes a frame to the device (`bytes` is its binary form when known). */
  emit(frame: ServerFrame, bytes?: Uint8Array): void;
  /** Ends the session: too much arrived while catching up, or a gap could not be filled. */
  close(reason: Disconnect, detail: string): void;
}

export interface DeliveryLimits {
  /** Events per Sync page. */
  replayPageSize: number;
  /** Live frames held while replaying or filling a gap, before the device counts as slow. */
  maxHeldFrames: number;
}

interface Held {
  frame: ServerFrame;
  bytes: Uint8Array;
}

/**
 * A replayed event as a Sync page holds it: decoded (a gateway beside the Default Service, or an
 * older service), or as the service encoded it (SyncDevices' `encoded_events`: encoded-event.ts).
 * The delivery itself reads only its room and seq.
 */
export type ReplayedEvent = RoomEvent | EncodedEvent;

/** A Sync page as the delivery reads it: SyncResponse, its events decoded or not. */
export type SyncPage = Omit<SyncResponse, "events"> & { events: readonly ReplayedEvent[] };

/**
 * A decoded replayed event's frame and its bytes, made once per event object: the devices of a
 * room that catch up together get the same object from Sync (one answer for all of them), and so
 * the same bytes, which the transport also frames once (ws.ts). An EncodedEvent carries its own.
 */
const eventFrames = new WeakMap<RoomEvent, Held>();
function eventFrame(e: ReplayedEvent): Held {
  if (e instanceof EncodedEvent) return e;
  let held = eventFrames.get(e);
  if (!held) {
    const frame = create(ServerFrameSchema, { frame: { case: "event", value: e } });
    held = { frame, bytes: toBinary(ServerFrameSchema, frame) };
    eventFrames.set(e, held);
  }
  return held;
}

/**
 * A device's events in seq order per room, with no gap and no duplicate, across the seam between
 * replay and live. Until the replay is over every live frame is held; then the held frames go
 * through the same per-room order check as those that follow. A live event past a gap (seq n+2
 * after n) is held, with everything after it, until Sync has fetched what is missing.
 */
export class OrderedDelivery {
  private readonly order = new RoomSequencer();
  /** Live frames held back (made only when one is). */
  private held: Held[] | undefined;
  private replaying = true;
  private catchingUp = false;
  private stopped = false;

  constructor(
    private readonly target: DeliveryTarget,
    private readonly limits: DeliveryLimits,
    private readonly logger: Logger,
  ) {}

  /**
   * Replays what the device missed from its cursors (rooms not named start from its acknowledged
   * cursor), says `synced`, then passes on what arrived meanwhile. Rejects if Sync fails.
   * Answers how many events the replay wrote.
   */
  async replay(cursors: RoomCursor[]): Promise<number> {
    for (const c of cursors) this.order.set(c.roomId, Number(c.seq));
    const events = await this.sync(cursors);
    if (this.stopped) return events;
    this.target.emit(create(ServerFrameSchema, { frame: { case: "synced", value: {} } }));
    this.replaying = false;
    this.release();
    return events;
  }

  /** A live frame: written now, held (replay or gap fill under way), or dropped (already written). */
  offer(frame: ServerFrame, bytes: Uint8Array): void {
    if (this.stopped) return;
    if (this.replaying || this.catchingUp) {
      this.hold(frame, bytes);
      return;
    }
    if (frame.frame.case !== "event") {
      this.target.emit(frame, bytes);
      return;
    }
    const e = frame.frame.value;
    const verdict = this.order.offer(e.roomId, Number(e.seq));
    if (verdict === "deliver") this.target.emit(frame, bytes);
    else if (verdict === "gap") {
      this.hold(frame, bytes);
      void this.catchUp();
    }
  }

  /** The session is over: nothing more is written, what was held is dropped. */
  stop(): void {
    this.stopped = true;
    this.held = undefined;
  }

  /** A gap in a room: fetch what is missing before showing anything after it. */
  private async catchUp(): Promise<void> {
    if (this.catchingUp || this.replaying || this.stopped) return;
    this.catchingUp = true;
    try {
      await this.sync([...this.order.entries()].map(([roomId, seq]) => ({ roomId, seq: BigInt(seq) }) as RoomCursor));
    } catch (err) {
      this.logger.warn({ err, connection_id: this.target.connectionId }, "gap fill failed");
      this.target.close(DISCONNECT.internal, "could not fetch missed events");
    } finally {
      this.catchingUp = false;
    }
    if (!this.stopped) this.release();
  }

  /** Sync pages until nothing is missing; events pass the per-room order check. */
  private async sync(cursors: RoomCursor[]): Promise<number> {
    let position = cursors;
    let written = 0;
    for (;;) {
      const page = await this.target.sync(position, this.limits.replayPageSize);
      if (this.stopped) return written;
      for (const r of page.resync) {
        this.order.set(r.roomId, Number(r.fromSeq) - 1);
        this.target.emit(create(ServerFrameSchema, { frame: { case: "resync", value: r } }));
      }
      for (const e of page.events) {
        if (this.order.offer(e.roomId, Number(e.seq)) === "deliver") {
          const { frame, bytes } = eventFrame(e);
          this.target.emit(frame, bytes);
          written++;
        }
      }
      for (const c of page.cursors) {
        if ((this.order.position(c.roomId) ?? -1) < Number(c.seq)) this.order.set(c.roomId, Number(c.seq));
      }
      if (!page.hasMore) return written;
      position = page.cursors;
    }
  }

  private hold(frame: ServerFrame, bytes: Uint8Array): void {
    this.held ??= [];
    const held = this.held;
    held.push({ frame, bytes });
    if (held.length > this.limits.maxHeldFrames)
      this.target.close(DISCONNECT.slow, "too much arrived while catching up");
  }

  /** Passes held live frames on, through the same order check. */
  private release(): void {
    const held = this.held;
    this.held = undefined;
    for (const { frame, bytes } of held ?? []) this.offer(frame, bytes);
  }
}
