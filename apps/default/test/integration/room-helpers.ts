import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type AckEvent,
  Direction,
  type Room,
  type RoomEventSchema,
  RoomType,
  type SystemContent,
  SystemEventKind,
} from "@service-chat/api";
import type { ChatClient } from "@service-chat/testing";
import { text } from "@service-chat/testing";
import type { Kysely } from "kysely";
import { expect } from "vitest";
import type { Schema } from "../../src/db/schema.js";

export { edit as editEvent, failsWith, redact as redactEvent, text as textEvent } from "@service-chat/testing";

/** Sends one event and returns its ack (which may carry a per-event error). */
export async function sendOne(client: ChatClient, event: MessageInitShape<typeof RoomEventSchema>): Promise<AckEvent> {
  const { ack } = await client.sendEvent({ event: [event] });
  expect(ack).toHaveLength(1);
  return ack[0] as AckEvent;
}

export const sendText = (client: ChatClient, roomId: string, body: string) => sendOne(client, text(roomId, body));

/** The room's system events, oldest first. */
export async function systemEvents(client: ChatClient, roomId: string): Promise<SystemContent[]> {
  const { events } = await client.getHistory({ roomId, direction: Direction.FORWARD, limit: 100 });
  return events.flatMap((e) => (e.content.case === "system" ? [e.content.value] : []));
}

/** The newest system event of the room, which must be of `kind`. */
export async function lastSystemEvent(client: ChatClient, roomId: string, kind: SystemEventKind) {
  const all = await systemEvents(client, roomId);
  const last = all[all.length - 1] as SystemContent;
  expect(SystemEventKind[last.kind]).toBe(SystemEventKind[kind]);
  return last;
}

export async function createGroup(owner: ChatClient, name: string, members: string[] = []): Promise<Room> {
  const { room } = await owner.createRoom({
    name,
    type: RoomType.GROUP,
    members: members.map((profileId) => ({ profileId })),
  });
  return room as Room;
}

export async function createChannel(owner: ChatClient, name: string, members: string[] = []): Promise<Room> {
  const { room } = await owner.createRoom({
    name,
    type: RoomType.CHANNEL,
    members: members.map((profileId) => ({ profileId })),
  });
  return room as Room;
}

/** Every room SearchRooms lists for the client with this query, following cursors. */
export async function allRooms(client: ChatClient, query = "", limit = 100): Promise<Room[]> {
  const rooms: Room[] = [];
  let cursor = "";
  for (let page = 0; page < 100; page++) {
    const res = await client.searchRooms({ query, cursor, limit });
    rooms.push(...res.rooms);
    if (!res.nextCursor) return rooms;
    cursor = res.nextCursor;
  }
  throw new Error("SearchRooms never stopped paging");
}

/** Rows in the service's tables: to show that a refused call wrote nothing. */
export async function rowCounts(db: Kysely<Schema>) {
  const count = async (table: "rooms" | "room_subscriptions" | "room_events") =>
    Number(
      (
        await db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<number>().as("n"))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return {
    rooms: await count("rooms"),
    subscriptions: await count("room_subscriptions"),
    events: await count("room_events"),
  };
}

/** Members of a room as `profile id → role`, as SearchRoomSubscriptions lists them. */
export async function roles(client: ChatClient, roomId: string): Promise<Record<string, string>> {
  const { subscriptions } = await client.searchRoomSubscriptions({ roomId, limit: 100 });
  return Object.fromEntries(subscriptions.map((s) => [s.member?.profileId ?? "", s.role]));
}

/** A room created by `owner` (as owner) with the others added in the roles given. */
export async function roomWithRoles(
  owner: ChatClient,
  members: Record<string, "owner" | "admin" | "moderator" | "member" | "guest">,
  type: RoomType.GROUP | RoomType.CHANNEL = RoomType.GROUP,
): Promise<Room> {
  const { room } = await owner.createRoom({ name: "room with roles", type });
  const entries = Object.entries(members);
  if (entries.length > 0) {
    await owner.addRoomSubscriptions({
      roomId: room!.id,
      members: entries.map(([profileId, role]) => ({ profileId, role })),
    });
  }
  return (await owner.getRoom({ roomId: room!.id })).room as Room;
}
