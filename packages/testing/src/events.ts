import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type AckEvent,
  Direction,
  type RoomEvent,
  type RoomEventSchema,
  RoomEventType,
  RoomType,
} from "@service-chat/api";
import { expect } from "vitest";
import type { ChatClient, TestApp } from "./app.js";

/** A RoomEvent as plain object literal (not a created message). */
export type EventInit = Exclude<MessageInitShape<typeof RoomEventSchema>, RoomEvent>;

export const text = (roomId: string, body: string, extra: Partial<EventInit> = {}): EventInit => ({
  roomId,
  type: RoomEventType.TEXT,
  content: { case: "text", value: { body } },
  ...extra,
});

export const edit = (roomId: string, targetEventId: string, body: string): EventInit => ({
  roomId,
  type: RoomEventType.EDIT,
  content: { case: "edit", value: { targetEventId, text: { body } } },
});

export const redact = (roomId: string, targetEventId: string, reason = ""): EventInit => ({
  roomId,
  type: RoomEventType.REDACTION,
  content: { case: "redaction", value: { targetEventId, reason } },
});

export const react = (roomId: string, targetEventId: string, key = "👍"): EventInit => ({
  roomId,
  type: RoomEventType.REACTION,
  content: { case: "reaction", value: { targetEventId, key, add: true } },
});

/** A private group owned by `owner`, with the other users as members; returns its id. */
export async function groupRoom(t: TestApp, owner: string, ...members: string[]): Promise<string> {
  const { room } = await t.as(owner).createRoom({
    name: `room of ${owner}`,
    type: RoomType.GROUP,
    members: members.map((profileId) => ({ profileId })),
  });
  return room?.id as string;
}

export async function send(client: ChatClient, ...events: EventInit[]): Promise<AckEvent[]> {
  const { ack } = await client.sendEvent({ event: events });
  expect(ack).toHaveLength(events.length);
  return ack;
}

/** Sends one event that must be stored; returns its ack. */
export async function sendOk(client: ChatClient, event: EventInit): Promise<AckEvent> {
  const [ack] = await send(client, event);
  expect(ack?.error, ack?.error?.message).toBeUndefined();
  expect(ack?.eventId).not.toBe("");
  return ack as AckEvent;
}

/** Sends one event that must be refused with `code`, the message naming `field` when given. */
export async function sendRefused(
  client: ChatClient,
  event: EventInit,
  code: string,
  field?: string,
): Promise<AckEvent> {
  const [ack] = await send(client, event);
  expect({ code: ack?.error?.code, message: ack?.error?.message }).toEqual({
    code,
    message: field ? expect.stringContaining(`${field}: `) : expect.any(String),
  });
  expect(ack?.eventId).toBe("");
  expect(ack?.seq).toBe(0n);
  return ack as AckEvent;
}

/** Awaits a call that must fail with `code`, its message starting with `field` when given. */
export async function failsWith(call: Promise<unknown>, code: Code, field?: string): Promise<ConnectError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call should have failed").toBeInstanceOf(ConnectError);
  const ce = err as ConnectError;
  expect({ code: Code[ce.code], message: ce.rawMessage }).toMatchObject({ code: Code[code] });
  if (field !== undefined) expect(ce.rawMessage, ce.rawMessage).toMatch(new RegExp(`^${escapeRegExp(field)}: `));
  return ce;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Every event of a room, oldest first, read with pages of 100. */
export async function fullHistory(client: ChatClient, roomId: string): Promise<RoomEvent[]> {
  const all: RoomEvent[] = [];
  let cursor = "";
  do {
    const page = await client.getHistory({ roomId, cursor, limit: 100, direction: Direction.FORWARD });
    all.push(...page.events);
    cursor = page.nextCursor;
  } while (cursor !== "");
  return all;
}

export async function eventById(client: ChatClient, roomId: string, id: string): Promise<RoomEvent> {
  const found = (await fullHistory(client, roomId)).find((e) => e.id === id);
  expect(found, `event ${id} in history`).toBeDefined();
  return found as RoomEvent;
}

/** Rows in room_events and outbox, in one room or in all. */
export async function countRows(t: TestApp, roomId?: string): Promise<{ events: number; outbox: number }> {
  let events = t.db.selectFrom("room_events").select((eb) => eb.fn.countAll<string>().as("n"));
  let outbox = t.db.selectFrom("outbox").select((eb) => eb.fn.countAll<string>().as("n"));
  if (roomId) {
    events = events.where("room_id", "=", roomId);
    outbox = outbox.where("room_id", "=", roomId);
  }
  const [e, o] = await Promise.all([events.executeTakeFirstOrThrow(), outbox.executeTakeFirstOrThrow()]);
  return { events: Number(e.n), outbox: Number(o.n) };
}

/** The ids of the events a search returns, across every page. */
export async function searchIds(client: ChatClient, query: string, roomId = "", limit = 0): Promise<string[]> {
  const ids: string[] = [];
  let cursor = "";
  do {
    const page = await client.searchEvents({ query, roomId, cursor, limit });
    ids.push(...page.events.map((e) => e.id));
    cursor = page.nextCursor;
  } while (cursor !== "");
  return ids;
}
