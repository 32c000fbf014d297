import { create, toBinary } from "@bufbuild/protobuf";
import {
  type Resync,
  ResyncSchema,
  type RoomCursor,
  RoomCursorSchema,
  type RoomEvent,
  ServerFrameSchema,
} from "@service-chat/api";
import {
  checkCount,
  checkId,
  checkLimit,
  checkProfileId,
  type Identity,
  invalid,
  type LiveBus,
} from "@service-chat/core";
import { publishToUsers } from "@service-chat/protocol";
import { requireAccess } from "../authz/access.js";
import { unreadCount } from "../rooms/present.js";
import type { DeliveryStore } from "./store.js";
import { type PageEvent, type SyncAnswer, SyncBatcher, type SyncRequest } from "./sync-batch.js";

export interface SyncQuery {
  cursors: RoomCursor[];
  limit: number;
  deviceId: string;
}

export interface SyncPage {
  events: RoomEvent[];
  resync: Resync[];
  hasMore: boolean;
  cursors: RoomCursor[];
}

/** A page of several devices' Syncs read together: an event several pages hold is one object. */
export type BatchPage = Omit<SyncPage, "events"> & { events: PageEvent[] };

/** Contract limits of Sync (docs/api.md). */
export const MAX_SYNC_PAGE = 1000;
const MAX_CURSORS = 10_000;

/** Settings of Sync (docs/configuration.md). */
export interface SyncSettings {
  /** Events per room replayed at most; a device further behind gets `resync` (SYNC_MAX_BACKLOG). */
  maxBacklog: number;
  /** Events per page when the request names no limit (SYNC_PAGE_SIZE). */
  pageSize: number;
  /** Sync batches read at once (default 2): 1 on the embedded database, which runs one statement at a time. */
  readsInFlight?: number;
}

/** Devices whose Syncs are read together, at most (delivery/sync-batch.ts). */
const SYNC_BATCH_DEVICES = 200;
/** Events a batch reads, at most, shared evenly by its devices: each gets 100 or more. */
const SYNC_BATCH_EVENTS = 20_000;

/**
 * Per-device delivery state and catch-up: acknowledged cursors, read markers (with live receipts),
 * Sync for a device coming back, and typing signals. Cursors are one row per (device, room),
 * moved forward in place; nothing is written per message.
 */
export class SyncService {
  private readonly batcher: SyncBatcher;

  constructor(
    private readonly store: DeliveryStore,
    private readonly live: LiveBus,
    private readonly settings: SyncSettings,
  ) {
    this.batcher = new SyncBatcher(store, {
      inFlight: settings.readsInFlight ?? 2,
      maxDevices: SYNC_BATCH_DEVICES,
      maxEvents: SYNC_BATCH_EVENTS,
      maxBacklog: settings.maxBacklog,
    });
  }

  /** Moves the device's delivered cursors forward (never back); answers the stored cursors. */
  async ack(caller: Identity, acks: RoomCursor[], deviceId: string): Promise<RoomCursor[]> {
    const device = deviceOf(caller, deviceId);
    checkCount("acks", acks.length, 1000, 1);
    const latest = new Map<string, number>();
    acks.forEach((a, i) => {
      checkId(`acks[${i}].room_id`, a.roomId);
      if (a.seq < 0n) throw invalid(`acks[${i}].seq`, "must not be negative");
      latest.set(a.roomId, Math.max(latest.get(a.roomId) ?? 0, Number(a.seq)));
    });
    const rooms = await this.store.activeRooms(caller.profileId, [...latest.keys()]);
    acks.forEach((a, i) => {
      const room = rooms.get(a.roomId);
      if (!room) throw invalid(`acks[${i}].room_id`, "is not a room you are in");
      if (Number(a.seq) > room.last_seq)
        throw invalid(`acks[${i}].seq`, `is beyond the room's last seq ${room.last_seq}`);
    });
    const rows = await this.store.moveCursors(caller.profileId, device, latest);
    return rows.map((r) => create(RoomCursorSchema, { roomId: r.room_id, seq: BigInt(r.delivered_seq) }));
  }

  /** Moves the member's read marker forward and tells the room's members, live. */
  async markRead(caller: Identity, roomId: string, seq: bigint): Promise<{ readSeq: number; unread: number }> {
    checkId("room_id", roomId);
    if (seq < 0n) throw invalid("seq", "must not be negative");
    const { room } = await requireAccess(this.store.access, roomId, caller.profileId, "room.read");
    if (Number(seq) > room.last_seq) throw invalid("seq", `is beyond the room's last seq ${room.last_seq}`);
    const readSeq = await this.store.moveReadMarker(roomId, caller.profileId, Number(seq));
    const frame = create(ServerFrameSchema, {
      frame: { case: "receipt", value: { roomId, profileId: caller.profileId, readSeq: BigInt(readSeq) } },
    });
    await this.toMembers(roomId, toBinary(ServerFrameSchema, frame));
    return { readSeq, unread: unreadCount(room, readSeq) };
  }

  /** Tells the room's other members, live, that the caller is typing; nothing is stored. */
  async typing(caller: Identity, roomId: string, active: boolean): Promise<void> {
    checkId("room_id", roomId);
    await requireAccess(this.store.access, roomId, caller.profileId, "event.send");
    const frame = create(ServerFrameSchema, {
      frame: { case: "typing", value: { roomId, active, profileId: caller.profileId } },
    });
    await this.toMembers(roomId, toBinary(ServerFrameSchema, frame), caller.profileId);
  }

  /**
   * What the device has not seen, in every room the caller is in: from the cursor the device
   * gives, else the one it acknowledged, else where the member joined. A room further behind than
   * the backlog bound is answered with a `resync` naming where replay starts, never cut silently.
   */
  async sync(caller: Identity, q: SyncQuery): Promise<SyncPage> {
    const { events, ...page } = present(await this.batcher.read(this.check(caller, q)));
    return { ...page, events: events.map((e) => e.event) };
  }

  /**
   * Several devices' Syncs at once (SyncDevices), read in the same batch: one answer per device,
   * each settling on its own (a bad request rejects its answer only).
   */
  syncMany(devices: readonly { caller: Identity; query: SyncQuery }[]): Promise<BatchPage>[] {
    const answers: Promise<BatchPage>[] = [];
    const checked: SyncRequest[] = [];
    const slots: number[] = [];
    devices.forEach(({ caller, query }, i) => {
      try {
        checked.push(this.check(caller, query));
        slots.push(i);
      } catch (err) {
        answers[i] = Promise.reject(err);
      }
    });
    this.batcher.readMany(checked).forEach((read, k) => {
      answers[slots[k] as number] = read.then(present);
    });
    return answers;
  }

  /** A Sync checked and ready to read. */
  private check(caller: Identity, q: SyncQuery): SyncRequest {
    const device = q.deviceId || caller.deviceId ? deviceOf(caller, q.deviceId) : undefined;
    const limit = checkLimit("limit", q.limit, this.settings.pageSize, MAX_SYNC_PAGE);
    checkCount("cursors", q.cursors.length, MAX_CURSORS);
    const given = new Map<string, number>();
    q.cursors.forEach((c, i) => {
      checkId(`cursors[${i}].room_id`, c.roomId);
      if (c.seq < 0n) throw invalid(`cursors[${i}].seq`, "must not be negative");
      given.set(c.roomId, Number(c.seq));
    });
    return { reader: { profileId: caller.profileId, deviceId: device }, given, limit };
  }

  private async toMembers(roomId: string, frame: Uint8Array, except?: string): Promise<void> {
    // Asked fresh each time: this process may not see the room's membership events (no fan-out
    // role here), and signals are rare next to messages.
    const members = await this.store.memberIds(roomId);
    publishToUsers(
      this.live,
      members.filter((m) => m !== except),
      frame,
    );
  }
}

/** A batch's answer for one device, as Sync's page. */
function present({ plan, events }: SyncAnswer): BatchPage {
  return {
    events,
    resync: plan.resync.map((r) =>
      create(ResyncSchema, {
        roomId: r.roomId,
        fromSeq: BigInt(r.fromSeq),
        lastSeq: BigInt(r.lastSeq),
        reason: r.reason,
      }),
    ),
    hasMore: plan.hasMore,
    cursors: plan.cursors.map((c) => create(RoomCursorSchema, { roomId: c.roomId, seq: BigInt(c.seq) })),
  };
}

/** The device a cursor belongs to: the token's device_id claim, else the one the request names. */
function deviceOf(caller: Identity, requested: string): string {
  if (caller.deviceId) {
    if (requested && requested !== caller.deviceId) throw invalid("device_id", "differs from the token's device_id");
    return caller.deviceId;
  }
  if (!requested) throw invalid("device_id", "is required when the token has no device_id claim");
  return checkProfileId("device_id", requested);
}
