import type { CreateRoomRequest, Room, UpdateRoomRequest } from "@service-chat/api";
import { checkId, checkLimit, decodeCursor, encodeCursor, type Identity, invalid } from "@service-chat/core";
import { requireAccess, viewRoom } from "../authz/access.js";
import { assertCan } from "../authz/permissions.js";
import type { Role, RoomRow } from "../db/schema.js";
import { pageOf } from "../events/cursors.js";
import type { Page } from "../events/event-service.js";
import { SystemEventKind, systemEvent } from "../events/kinds/system.js";
import { checkRetention } from "../lifecycle/retention.js";
import { presentRoom } from "./present.js";
import type { NewMember, RoomChanges, RoomFields, RoomStore } from "./store.js";
import {
  checkDescription,
  checkMembers,
  checkMetadata,
  checkName,
  checkRoomType,
  type MemberInput,
} from "./validate.js";

export interface RoomSearch {
  query: string;
  cursor: string;
  limit: number;
}

/** Rooms: create (direct rooms once per pair), read, search, update, delete. */
export class RoomService {
  constructor(private readonly store: RoomStore) {}

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
    const row = await this.store.transaction(async (tx) => {
      const room = await tx.insert(fields, members.length + 1);
      await tx.insertMembers(firstMembers(room.id, caller, "owner", members, "member"));
      await tx.events.append(room, [
        systemEvent(caller.profileId, SystemEventKind.ROOM_CREATED, { profileIds: members.map((m) => m.profileId) }),
      ]);
      await tx.audit.record([
        {
          actorId: caller.profileId,
          action: "room.created",
          roomId: room.id,
          targets: members.map((m) => m.profileId),
          details: { type },
        },
      ]);
      return room;
    });
    return presentRoom(row, row.last_seq);
  }

  /** The one live direct room of a pair: returned if it exists, created otherwise (race-safe). */
  private async createDirect(caller: Identity, other: MemberInput, fields: RoomFields): Promise<RoomRow> {
    const key = [caller.profileId, other.profileId].sort().join("\n");
    const found = await this.store.findDirect(key);
    if (found) return found;
    const created = await this.store.transaction(async (tx) => {
      const room = await tx.insertDirect(fields, key);
      if (!room) return undefined;
      // Both people own a direct room: either may rename it or delete it for both.
      await tx.insertMembers(firstMembers(room.id, caller, "owner", [other], "owner"));
      await tx.events.append(room, [
        systemEvent(caller.profileId, SystemEventKind.ROOM_CREATED, { profileIds: [other.profileId] }),
      ]);
      await tx.audit.record([
        {
          actorId: caller.profileId,
          action: "room.created",
          roomId: room.id,
          targets: [other.profileId],
          details: { type: "direct" },
        },
      ]);
      return room;
    });
    return created ?? ((await this.store.findDirect(key)) as RoomRow);
  }

  async get(caller: Identity, roomId: string): Promise<Room> {
    checkId("room_id", roomId);
    const { room, sub } = await viewRoom(this.store.access, roomId, caller.profileId);
    return presentRoom(room, sub?.read_seq);
  }

  /** The caller's rooms and every public channel, newest first, optionally matching `query`. */
  async search(caller: Identity, q: RoomSearch): Promise<Page<Room>> {
    checkName("query", q.query);
    const limit = checkLimit("limit", q.limit, 50, 100);
    const cursor = decodeCursor("cursor", q.cursor, { id: "string" });
    const rows = await this.store.search({
      profileId: caller.profileId,
      limit,
      ...(q.query ? { query: q.query } : {}),
      ...(cursor ? { beforeId: cursor.id } : {}),
    });
    const { page, nextCursor } = pageOf(rows, limit, (last) => encodeCursor({ id: last.id }));
    return { items: page.map(({ read_seq, ...room }) => presentRoom(room, read_seq ?? undefined)), nextCursor };
  }

  async update(caller: Identity, req: UpdateRoomRequest): Promise<Room> {
    checkId("room_id", req.roomId);
    const changes: RoomChanges = {};
    if (req.name !== undefined) changes.name = checkName("name", req.name);
    if (req.description !== undefined) changes.description = checkDescription("description", req.description);
    if (req.metadata !== undefined) changes.metadata = checkMetadata("metadata", req.metadata);
    const fields = Object.keys(changes);
    if (req.retention !== undefined) {
      Object.assign(changes, checkRetention("retention", req.retention));
      fields.push("retention");
    }
    if (fields.length === 0)
      throw invalid("room_id", "nothing to update: set name, description, metadata or retention");
    const row = await this.store.transaction(async (tx) => {
      const room = await tx.events.lockOrNotFound(req.roomId);
      const retentionOnly = fields.length === 1 && fields[0] === "retention";
      const action = retentionOnly ? "room.retention" : "room.update";
      const { sub } = await requireAccess(tx.access, room.id, caller.profileId, action, room);
      if (!retentionOnly && req.retention !== undefined) assertCan(sub.role, "room.retention");
      if (room.type === "channel" && changes.name !== undefined) checkName("name", changes.name, true);
      await tx.events.append(room, [systemEvent(caller.profileId, SystemEventKind.ROOM_UPDATED, { fields })]);
      await tx.audit.record([
        { actorId: caller.profileId, action: "room.updated", roomId: room.id, details: { fields } },
      ]);
      return { updated: await tx.update(room.id, changes), readSeq: sub.read_seq };
    });
    return presentRoom(row.updated, row.readSeq);
  }

  /** Deletes a room for everyone; the deletion is the room's last event. */
  async delete(caller: Identity, roomId: string): Promise<string> {
    checkId("room_id", roomId);
    await this.store.transaction(async (tx) => {
      const room = await tx.events.lockOrNotFound(roomId);
      await requireAccess(tx.access, room.id, caller.profileId, "room.delete", room);
      await tx.events.append(room, [systemEvent(caller.profileId, SystemEventKind.ROOM_DELETED)]);
      await tx.markDeleted(roomId);
      await tx.audit.record([{ actorId: caller.profileId, action: "room.deleted", roomId }]);
    });
    return roomId;
  }
}

/** A new room's memberships: the creator, who has read the creation event, and the members named. */
function firstMembers(
  roomId: string,
  caller: Identity,
  callerRole: Role,
  members: MemberInput[],
  role: Role,
): NewMember[] {
  return [
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
  ];
}
