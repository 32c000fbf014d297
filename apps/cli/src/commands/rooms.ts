import { RemoveRoomSubscriptionsResponseSchema, RoomSchema, RoomSubscriptionSchema, RoomType } from "@service-chat/api";
import { CALL, type Context } from "../context.js";
import { clean, printMembers, printRooms, roomLabel, roomTypeName } from "../output.js";
import { collect, resolveRoom, searchRooms } from "../rooms.js";

const TYPES: Record<string, RoomType> = {
  group: RoomType.GROUP,
  channel: RoomType.CHANNEL,
  direct: RoomType.DIRECT,
};

export const ROLES = ["owner", "admin", "moderator", "member", "guest"];

/** `chat rooms create <name> [--type group|channel|direct] [--member <id>]...` */
export async function create(ctx: Context): Promise<void> {
  const name = ctx.arg(0, "name");
  ctx.maxArgs(1);
  const typeName = ctx.options.type ?? "group";
  const type = TYPES[typeName];
  if (type === undefined) throw ctx.usage(`--type must be group, channel or direct, not "${typeName}"`);
  const members = (ctx.options.member ?? []).map((profileId) => ({ profileId }));
  const { room } = await ctx.api.createRoom({ name, type, members }, CALL);
  if (!room) throw new Error("the server answered without the room");
  if (ctx.out.json) return ctx.out.message(RoomSchema, room);
  const count = `${room.memberCount} member${room.memberCount === 1 ? "" : "s"}`;
  ctx.out.line(`created ${roomTypeName(room.type)} ${roomLabel(room)} (${count}): ${room.id}`);
}

/** `chat rooms list [query] [--limit n]` */
export async function list(ctx: Context): Promise<void> {
  ctx.maxArgs(1);
  const query = ctx.args[0] ?? "";
  const max = ctx.limit(100);
  const rooms = await searchRooms(ctx, query, max);
  if (ctx.out.json) {
    for (const r of rooms) ctx.out.message(RoomSchema, r);
    return;
  }
  if (rooms.length === 0) {
    ctx.out.note(query ? `no room matches "${query}"` : "no rooms yet: create one with: chat rooms create <name>");
    return;
  }
  printRooms(ctx.out, rooms);
  if (rooms.length === max && ctx.options.limit === undefined) {
    ctx.out.note(`showing the first ${max}; see more with --limit, or narrow with a query`);
  }
}

/** `chat rooms members <room> [--limit n]` */
export async function members(ctx: Context): Promise<void> {
  ctx.maxArgs(1);
  const room = await resolveRoom(ctx, ctx.arg(0, "room"));
  const subs = await collect(async (cursor, limit) => {
    const r = await ctx.api.searchRoomSubscriptions({ roomId: room.id, cursor, limit }, CALL);
    return { items: r.subscriptions, next: r.nextCursor };
  }, ctx.limit(1000));
  if (ctx.out.json) {
    for (const s of subs) ctx.out.message(RoomSubscriptionSchema, s);
    return;
  }
  printMembers(ctx.out, subs);
}

/** `chat rooms add <room> <user>... [--role r]` */
export async function add(ctx: Context): Promise<void> {
  const ref = ctx.arg(0, "room");
  ctx.arg(1, "user");
  const role = ctx.options.role ?? "";
  if (role && !ROLES.includes(role)) throw ctx.usage(`--role must be one of ${ROLES.join(", ")}`);
  const room = await resolveRoom(ctx, ref);
  const users = ctx.args.slice(1);
  const { subscriptions } = await ctx.api.addRoomSubscriptions(
    { roomId: room.id, members: users.map((profileId) => ({ profileId, role })) },
    CALL,
  );
  if (ctx.out.json) {
    for (const s of subscriptions) ctx.out.message(RoomSubscriptionSchema, s);
    return;
  }
  const who = subscriptions.map((s) => `${clean(s.member?.profileId ?? "?")} (${s.role})`).join(", ");
  ctx.out.line(`added to ${roomLabel(room)}: ${who}`);
}

/** `chat rooms join <room> [--role member|guest]`: adds yourself to a public channel. */
export async function join(ctx: Context): Promise<void> {
  ctx.maxArgs(1);
  const role = ctx.options.role ?? "member";
  if (!["member", "guest"].includes(role)) throw ctx.usage("--role must be member or guest when you join");
  const room = await resolveRoom(ctx, ctx.arg(0, "room"));
  const { subscriptions } = await ctx.api.addRoomSubscriptions(
    { roomId: room.id, members: [{ profileId: ctx.me(), role }] },
    CALL,
  );
  if (ctx.out.json) {
    for (const s of subscriptions) ctx.out.message(RoomSubscriptionSchema, s);
    return;
  }
  ctx.out.line(`joined ${roomLabel(room)} as ${subscriptions[0]?.role ?? role}`);
}

/** `chat rooms leave <room>`: removes yourself. */
export async function leave(ctx: Context): Promise<void> {
  ctx.maxArgs(1);
  const room = await resolveRoom(ctx, ctx.arg(0, "room"));
  const res = await ctx.api.removeRoomSubscriptions({ roomId: room.id, profileIds: [ctx.me()] }, CALL);
  if (ctx.out.json) return ctx.out.message(RemoveRoomSubscriptionsResponseSchema, res);
  if (res.profileIds.length === 0) ctx.out.note(`you are not a member of ${roomLabel(room)}`);
  else ctx.out.line(`left ${roomLabel(room)}`);
}

/** `chat rooms remove <room> <user>...` */
export async function remove(ctx: Context): Promise<void> {
  const ref = ctx.arg(0, "room");
  ctx.arg(1, "user");
  const room = await resolveRoom(ctx, ref);
  const users = ctx.args.slice(1);
  const res = await ctx.api.removeRoomSubscriptions({ roomId: room.id, profileIds: users }, CALL);
  if (ctx.out.json) {
    return ctx.out.message(RemoveRoomSubscriptionsResponseSchema, res);
  }
  const removed = new Set(res.profileIds);
  const missing = users.filter((u) => !removed.has(u));
  if (removed.size > 0) ctx.out.line(`removed from ${roomLabel(room)}: ${[...removed].map(clean).join(", ")}`);
  if (missing.length > 0) ctx.out.note(`not members of ${roomLabel(room)}: ${missing.map(clean).join(", ")}`);
}
