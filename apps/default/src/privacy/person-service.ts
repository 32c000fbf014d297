import { toJson } from "@bufbuild/protobuf";
import { RoomEventSchema } from "@service-chat/api";
import { type ConnectionRegistry, checkProfileId, denied, type Identity, type Logger } from "@service-chat/core";
import { SystemEventKind, systemEvent } from "../events/kinds/system.js";
import { presentEvent } from "../events/present.js";
import type { ErasureRow, EventPosition, PersonStore } from "./store.js";

/** The export's format name, in its first line (docs/privacy.md). */
export const EXPORT_FORMAT = "service-chat.person-export.v1";

/** What one ErasePerson call did, and the record it completed. */
export interface ErasureResult {
  record: ErasureRow;
  eventsRedacted: number;
  roomsLeft: number;
  directRoomsClosed: number;
}

export interface PersonServiceOptions {
  admins: ReadonlySet<string>;
  registry: ConnectionRegistry;
  logger: Logger;
  /** Events emptied per transaction, and events per export message. */
  batchSize?: number;
}

/**
 * A data subject's rights (docs/privacy.md): erasure, by a deployment admin, and export,
 * by an admin or the person. An erasure runs in short transactions, each idempotent, and keeps a
 * record in `erasures`: a second call, or the recovery (erasure-recovery.ts), finishes what a
 * stopped one left.
 */
export class PersonService {
  private readonly batch: number;

  constructor(
    private readonly store: PersonStore,
    private readonly o: PersonServiceOptions,
  ) {
    this.batch = o.batchSize ?? 500;
  }

  async erase(caller: Identity, profileId: string): Promise<ErasureResult> {
    this.assertAdmin(caller);
    checkProfileId("profile_id", profileId);
    const started = await this.store.transaction(async (tx) => {
      const { record, made } = await tx.startErasure(profileId, caller.profileId);
      await tx.audit.record([
        {
          actorId: caller.profileId,
          action: made ? "person.erasure_requested" : "person.erasure_repeated",
          targets: [profileId],
        },
      ]);
      return record;
    });
    this.o.logger.info(
      { audit: "erase_person", actor: caller.profileId, profileId, requestedAt: started.requested_at },
      "erasure started",
    );
    return this.carryOut(caller.profileId, profileId);
  }

  /**
   * Finishes the erasures that were requested more than `graceSec` ago and never completed (the
   * process erasing stopped), on behalf of whoever requested them; answers how many.
   */
  async resumeUnfinished(graceSec: number): Promise<number> {
    const unfinished = await this.store.unfinishedErasures(graceSec, 100);
    for (const e of unfinished) {
      this.o.logger.info(
        { audit: "erase_person", actor: e.requested_by, profileId: e.profile_id, requestedAt: e.requested_at },
        "erasure resumed",
      );
      await this.carryOut(e.requested_by, e.profile_id);
    }
    return unfinished.length;
  }

  private async carryOut(actor: string, profileId: string): Promise<ErasureResult> {
    const { rooms, direct } = await this.leaveRooms(actor, profileId);
    const events = await this.redactEvents(profileId);
    await this.store.transaction((tx) => tx.deleteRows(profileId));
    await this.o.registry.forget(profileId);
    const record = await this.store.transaction(async (tx) => {
      const done = await tx.completeErasure(profileId);
      await tx.audit.record([
        {
          actorId: actor,
          action: "person.erased",
          targets: [profileId],
          details: { eventsRedacted: events, roomsLeft: rooms, directRoomsClosed: direct },
        },
      ]);
      return done;
    });
    this.o.logger.info({ audit: "erase_person", actor, profileId, events, rooms, direct }, "erasure completed");
    return { record, eventsRedacted: events, roomsLeft: rooms, directRoomsClosed: direct };
  }

  /**
   * Takes the person out of every live room, one room per transaction, as a system event the
   * room's members see: MEMBERS_REMOVED, or ROOM_DELETED for a direct room, which closes for the
   * other person too (a conversation with nobody on the other side).
   */
  private async leaveRooms(actor: string, profileId: string): Promise<{ rooms: number; direct: number }> {
    let rooms = 0;
    let direct = 0;
    for (;;) {
      const ids = await this.store.activeRoomIds(profileId, 100);
      if (ids.length === 0) return { rooms, direct };
      for (const roomId of ids) {
        const done = await this.store.transaction(async (tx) => {
          const room = await tx.events.lockRoom(roomId);
          if (!room || !(await tx.isActiveMember(roomId, profileId))) return undefined;
          const why = { erasureOf: profileId };
          if (room.type === "direct") {
            await tx.events.append(room, [systemEvent(actor, SystemEventKind.ROOM_DELETED)]);
            await tx.closeRoom(roomId);
            await tx.audit.record([{ actorId: actor, action: "room.deleted", roomId, details: why }]);
          } else {
            await tx.removeMember(room, profileId);
            const removal = systemEvent(actor, SystemEventKind.MEMBERS_REMOVED, { profileIds: [profileId] });
            // A room whose last owner goes keeps one: the highest role, then the longest in the room.
            const heir = await tx.successor(roomId);
            if (heir) await tx.makeOwner(roomId, heir.profile_id);
            const promotion = heir
              ? [systemEvent(actor, SystemEventKind.ROLE_CHANGED, { profileIds: [heir.profile_id], role: "owner" })]
              : [];
            await tx.events.append(room, [removal, ...promotion]);
            await tx.audit.record([
              { actorId: actor, action: "members.removed", roomId, targets: [profileId], details: why },
              ...(heir
                ? [
                    {
                      actorId: actor,
                      action: "member.role_changed",
                      roomId,
                      targets: [heir.profile_id],
                      details: { role: "owner", previous: heir.role, ...why },
                    },
                  ]
                : []),
            ]);
          }
          const counts = room.type === "direct" ? { rooms: 1, direct: 1 } : { rooms: 1 };
          await tx.countErasure(profileId, counts);
          return counts;
        });
        rooms += done?.rooms ?? 0;
        direct += done?.direct ?? 0;
      }
    }
  }

  /** Empties every event the person sent to a tombstone, `batch` per transaction. */
  private async redactEvents(profileId: string): Promise<number> {
    let total = 0;
    let after: EventPosition | undefined;
    for (;;) {
      const page = await this.store.eventIdsAfter(profileId, after, this.batch);
      if (page.length === 0) return total;
      const n = await this.store.transaction(async (tx) => {
        const changed = await tx.redactEvents(page.map((e) => e.id));
        await tx.countErasure(profileId, { events: changed });
        return changed;
      });
      total += n;
      const last = page[page.length - 1] as EventPosition;
      after = { roomId: last.roomId, seq: last.seq };
    }
  }

  /**
   * Everything stored about the person, as JSON lines in pages: a header, the erasure record if
   * any, memberships (read markers in them), rooms they created, their events, devices (push
   * settings), device cursors, push dead letters, when they were last seen, and a closing count.
   */
  async *export(caller: Identity, profileId: string): AsyncGenerator<string[]> {
    if (caller.profileId !== profileId) this.assertAdmin(caller, "or the person themselves");
    checkProfileId("profile_id", profileId);
    const line = (kind: string, fields: object) => JSON.stringify({ kind, ...fields });
    const counts: Record<string, number> = {};
    const lines = <T>(kind: string, rows: T[], fields: (r: T) => object): string[] => {
      counts[kind] = (counts[kind] ?? 0) + rows.length;
      return rows.map((r) => line(kind, fields(r)));
    };
    const erasure = await this.store.erasure(profileId);
    yield [
      line("export", { format: EXPORT_FORMAT, profileId, exportedAt: new Date().toISOString() }),
      ...lines("erasure", erasure ? [erasure] : [], (e) => ({
        requestedAt: e.requested_at,
        completedAt: e.completed_at,
      })),
    ];
    const memberships = await this.store.memberships(profileId);
    const created = await this.store.roomsCreated(profileId);
    yield [
      ...lines("membership", memberships, (m) => ({
        roomId: m.room_id,
        roomType: m.type,
        roomName: m.name,
        roomDeleted: m.deleted_at !== null,
        role: m.role,
        state: m.state,
        contactId: m.contact_id,
        profileName: m.profile_name,
        joinedAt: m.joined_at,
        joinedSeq: m.joined_seq,
        readSeq: m.read_seq,
        leftSeq: m.left_seq,
      })),
      ...lines("room", created, (r) => ({
        roomId: r.id,
        type: r.type,
        name: r.name,
        description: r.description,
        metadata: r.metadata,
        createdAt: r.created_at,
        deleted: r.deleted_at !== null,
      })),
    ];
    let after: EventPosition | undefined;
    for (;;) {
      const rows = await this.store.eventsAfter(profileId, after, this.batch);
      if (rows.length === 0) break;
      yield lines("event", rows, (e) => ({ event: toJson(RoomEventSchema, presentEvent(e)) }));
      const last = rows[rows.length - 1] as (typeof rows)[number];
      after = { roomId: last.room_id, seq: last.seq };
    }
    const seen = (await this.o.registry.lastSeen([profileId])).get(profileId);
    const rest = [
      ...lines("device", await this.store.devices(profileId), (d) => ({
        deviceId: d.device_id,
        lastSeen: d.last_seen,
        push: d.push,
      })),
      ...lines("cursor", await this.store.cursors(profileId), (c) => ({
        deviceId: c.device_id,
        roomId: c.room_id,
        deliveredSeq: c.delivered_seq,
      })),
      ...lines("push_dead_letter", await this.store.deadLetters(profileId), (d) => ({
        id: d.id,
        roomId: d.room_id,
        eventId: d.event_id,
        as: d.sender ? "sender" : "recipient",
        createdAt: d.created_at,
      })),
      ...lines("presence", seen === undefined ? [] : [seen], (t) => ({ lastSeen: new Date(t).toISOString() })),
    ];
    if (rest.length > 0) yield rest;
    yield [line("end", { counts })];
  }

  private assertAdmin(caller: Identity, or = ""): void {
    if (!this.o.admins.has(caller.profileId))
      throw denied(`only the profiles in ADMIN_PROFILE_IDS${or ? ` ${or}` : ""} may do this`);
  }
}
