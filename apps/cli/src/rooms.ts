import type { Room } from "@service-chat/api";
import { CALL, type Context } from "./context.js";
import { CliError, EXIT } from "./errors.js";
import { roomLabel } from "./output.js";

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Pages through a listing until it ends or `max` items are in. */
export async function collect<T>(
  page: (cursor: string, limit: number) => Promise<{ items: T[]; next: string }>,
  max = Number.POSITIVE_INFINITY,
): Promise<T[]> {
  const all: T[] = [];
  let cursor = "";
  do {
    const { items, next } = await page(cursor, Math.min(100, max - all.length));
    all.push(...items);
    cursor = next;
  } while (cursor && all.length < max);
  return all.slice(0, max);
}

/** The caller's rooms and the public channels matching `query` (all of them when empty). */
export function searchRooms(ctx: Context, query = "", max?: number): Promise<Room[]> {
  return collect(async (cursor, limit) => {
    const r = await ctx.api.searchRooms({ query, cursor, limit }, CALL);
    return { items: r.rooms, next: r.nextCursor };
  }, max);
}

/** A room given by id or by exact name. */
export async function resolveRoom(ctx: Context, ref: string): Promise<Room> {
  if (ID.test(ref)) {
    const { room } = await ctx.api.getRoom({ roomId: ref.toLowerCase() }, CALL);
    if (room) return room;
  }
  const found = await searchRooms(ctx, ref);
  let named = found.filter((r) => r.name === ref);
  if (named.length === 0) named = found.filter((r) => r.name.toLowerCase() === ref.toLowerCase());
  if (named.length === 1) return named[0] as Room;
  if (named.length === 0) {
    throw new CliError(
      EXIT.refused,
      `not_found: no room "${ref}" among your rooms and the public channels (see: chat rooms list)`,
    );
  }
  throw new CliError(
    EXIT.usage,
    `${named.length} rooms are named "${ref}": give the room's id (see: chat rooms list ${ref})`,
  );
}

/** Labels (`#general`) of rooms by id, fetched once each. */
export class RoomNames {
  private readonly known = new Map<string, Promise<string>>();

  constructor(private readonly ctx: Context) {}

  add(room: Room): void {
    this.known.set(room.id, Promise.resolve(roomLabel(room)));
  }

  label(roomId: string): Promise<string> {
    let label = this.known.get(roomId);
    if (!label) {
      label = this.ctx.api.getRoom({ roomId }, CALL).then(
        ({ room }) => roomLabel(room ?? { id: roomId, name: "" }),
        () => roomLabel({ id: roomId, name: "" }),
      );
      this.known.set(roomId, label);
    }
    return label;
  }
}
