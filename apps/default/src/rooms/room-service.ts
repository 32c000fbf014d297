import type { CreateRoomRequest, Room, UpdateRoomRequest } from "@service-chat/api";
import { checkId, checkLimit, decodeCursor, encodeCursor, type Identity, invalid, newId } from "@service-chat/core";
import { requireAccess, viewRoom } from "../authz/access.js";
import type { Role, RoomRow } from "../db/schema.js";
import type { Page } from "../events/event-service.js";
import { appendEvents, type Db, lockOrNotFound, type Tx } from "../events/store.js";
import { SystemEventKind, systemEvent } from "../events/system.js";
import { presentRoom } from "./present.js";
import {
  checkDescription,
  checkMembers,
  checkMetadata,
  checkName,
  checkRoomType,
  likePattern,
  type MemberInput,
} from "./validate.js";

type RoomFields = Pick<RoomRow, "type" | "name" | "description" | "creator_id"> & { metadata: string };

export interface RoomSearch {
  query: string;
  cursor: string;
  limit: number;
}

/** Rooms: create (direct rooms once per pair), read, search, update, delete. */
export class RoomService {
  constructor(private readonly db: Db) {}

  async create(caller: Identity, req: CreateRoomRequest): Promise<Room> {
    const type = checkRoomType("type", req.type);
    const name = checkName("name", req.name, type === "channel");
    const description = checkDescription("description", req.description);
    const metadata = checkMetadata("metadata", req.metadata);
    const members = checkMembers("members", req.members, caller.profileId);
    if (type === "direct" && members.length !== 1) {
      throw invalid("members", "a direct room has exactly one member besides you");
    }
    const fields: RoomFields = { type, name, description, metadata, creator_id: caller.profileId };
    if (type === "direct")
      return this.get(caller, (await this.createDirect(caller, members[0] as MemberInput, fields)).id);
    const row = await this.db.transaction().execute(async (trx) => {
      const room = await trx
        .insertInto("rooms")
        .values({ id: newId(), ...fields, direct_key: null, member_count: members.length + 1 })
        .returningAll()
        .executeTakeFirstOrThrow();
      await insertMembers(trx, room.id, caller, "owner", members, "member");
      await appendEvents(trx, room, [
        systemEvent(caller.profileId, SystemEventKind.ROOM_CREATED, { profileIds: members.map((m) => m.profileId) }),
      ]);
      return room;
    });
    return presentRoom(row, row.last_seq);
  }

  /** The one live direct room of a pair: returned if it exists, created otherwise (race-safe). */
  private async createDirect(caller: Identity, other: MemberInput, fields: RoomFields): Promise<RoomRow> {
    const key = [caller.profileId, other.profileId].sort().join("\n");
    const existing = () =>
      this.db
        .selectFrom("rooms")
        .selectAll()
        .where("direct_key", "=", key)
        .where("deleted_at", "is", null)
        .executeTakeFirst();
    const found = await existing();
    if (found) return found;
    const created = await this.db.transaction().execute(async (trx) => {
      const room = await trx
        .insertInto("rooms")
        .values({ id: newId(), ...fields, direct_key: key, member_count: 2 })
        .onConflict((oc) => oc.column("direct_key").doNothing())
        .returningAll()
        .executeTakeFirst();
      if (!room) return undefined;
      // Both people own a direct room: either may rename it or delete it for both.
      await insertMembers(trx, room.id, caller, "owner", [other], "owner");
      await appendEvents(trx, room, [
        systemEvent(caller.profileId, SystemEventKind.ROOM_CREATED, { profileIds: [other.profileId] }),
      ]);
      return room;
    });
    return created ?? ((await existing()) as RoomRow);
  }

  async get(caller: Identity, roomId: string): Promise<Room> {
    checkId("room_id", roomId);
    const { room, sub } = await viewRoom(this.db, roomId, caller.profileId);
    return presentRoom(room, sub?.read_seq);
  }

  /** The caller's rooms and every public channel, newest first, optionally matching `query`. */
  async search(caller: Identity, q: RoomSearch): Promise<Page<Room>> {
    checkName("query", q.query);
    const limit = checkLimit("limit", q.limit, 50, 100);
    const cursor = decodeCursor("cursor", q.cursor, { id: "string" });
    let query = this.db
      .selectFrom("rooms as r")
      .leftJoin("room_subscriptions as s", (j) =>
        j.onRef("s.room_id", "=", "r.id").on("s.profile_id", "=", caller.profileId).on("s.state", "=", "active"),
      )
      .selectAll("r")
      .select("s.read_seq")
      .where("r.deleted_at", "is", null)
      .where((eb) => eb.or([eb("r.type", "=", "channel"), eb("s.profile_id", "is not", null)]))
      .orderBy("r.id", "desc")
      .limit(limit + 1);
    if (q.query) {
      const like = likePattern(q.query);
      query = query.where((eb) => eb.or([eb("r.name", "ilike", like), eb("r.description", "ilike", like)]));
    }
    if (cursor) query = query.where("r.id", "<", cursor.id);
    const rows = await query.execute();
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(({ read_seq, ...room }) => presentRoom(room, read_seq ?? undefined)),
      nextCursor: rows.length > limit && last ? encodeCursor({ id: last.id }) : "",
    };
  }

  async update(caller: Identity, req: UpdateRoomRequest): Promise<Room> {
    checkId("room_id", req.roomId);
    const changes: Partial<Pick<RoomRow, "name" | "description">> & { metadata?: string } = {};
    if (req.name !== undefined) changes.name = checkName("name", req.name);
    if (req.description !== undefined) changes.description = checkDescription("description", req.description);
    if (req.metadata !== undefined) changes.metadata = checkMetadata("metadata", req.metadata);
    const fields = Object.keys(changes);
    if (fields.length === 0) throw invalid("room_id", "nothing to update: set name, description or metadata");
    const row = await this.db.transaction().execute(async (trx) => {
      const room = await lockOrNotFound(trx, req.roomId);
      const { sub } = await requireAccess(trx, room.id, caller.profileId, "room.update", room);
      if (room.type === "channel" && changes.name !== undefined) checkName("name", changes.name, true);
      await appendEvents(trx, room, [systemEvent(caller.profileId, SystemEventKind.ROOM_UPDATED, { fields })]);
      const updated = await trx
        .updateTable("rooms")
        .set({ ...changes, updated_at: new Date() })
        .where("id", "=", room.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return { updated, readSeq: sub.read_seq };
    });
    return presentRoom(row.updated, row.readSeq);
  }

  /** Deletes a room for everyone; the deletion is the room's last event. */
  async delete(caller: Identity, roomId: string): Promise<string> {
    checkId("room_id", roomId);
    await this.db.transaction().execute(async (trx) => {
      const room = await lockOrNotFound(trx, roomId);
      await requireAccess(trx, room.id, caller.profileId, "room.delete", room);
      await appendEvents(trx, room, [systemEvent(caller.profileId, SystemEventKind.ROOM_DELETED)]);
      await trx
        .updateTable("rooms")
        .set({ deleted_at: new Date(), direct_key: null, updated_at: new Date() })
        .where("id", "=", roomId)
        .execute();
    });
    return roomId;
  }
}

async function insertMembers(
  trx: Tx,
  roomId: string,
  caller: Identity,
  callerRole: Role,
  members: MemberInput[],
  role: Role,
): Promise<void> {
  await trx
    .insertInto("room_subscriptions")
    .values([
      // The creator has read the creation event.
      {
        room_id: roomId,
        profile_id: caller.profileId,
        contact_id: caller.contactId,
        role: callerRole,
        read_seq: 1,
        settings: "{}",
      },
      ...members.map((m) => ({
        room_id: roomId,
        profile_id: m.profileId,
        contact_id: m.contactId,
        profile_name: m.profileName,
        role,
        settings: "{}",
      })),
    ])
    .execute();
}
