import { randomBytes } from "node:crypto";
import { type RoomEvent, RoomEventSchema } from "@service-chat/api";
import type { ChatStore, ConnectionState } from "@service-chat/sdk";
import type { Context } from "../context.js";
import { formatEvent, roomLabel } from "../output.js";
import { RoomNames, resolveRoom, searchRooms } from "../rooms.js";

/** A store that starts the session at each room's newest event, so only what happens from now on is shown. */
function startingAt(positions: Record<string, number>): ChatStore {
  return {
    load: async () => ({ positions: { ...positions }, outbox: [] }),
    save: async () => {},
  };
}

/** The device the server will use: the token's `device_id` claim, if it has one. */
function tokenDevice(token: string | undefined): string | undefined {
  try {
    const claims = JSON.parse(Buffer.from(token?.split(".")[1] ?? "", "base64url").toString("utf8"));
    return typeof claims.device_id === "string" && claims.device_id ? claims.device_id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `chat tail [room] [--device id]`: prints events as they arrive, reconnecting by itself, until
 * Ctrl-C. The line `following …` on stderr says the session is live.
 */
export async function tail(ctx: Context): Promise<void> {
  ctx.maxArgs(1);
  let finish: (err?: unknown) => void = () => {};
  const finished = new Promise<void>((resolve, reject) => {
    finish = (err) => (err ? reject(err) : resolve());
  });
  const stop = () => finish();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const printed = { done: Promise.resolve() };
  try {
    const following = follow(ctx, finish, printed);
    following.catch(() => {});
    await Promise.race([following, finished]);
    await finished;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    await printed.done;
  }
}

/** Opens the live session and prints what it brings; `finish` is called when it ends by itself. */
async function follow(ctx: Context, finish: (err?: unknown) => void, printed: { done: Promise<void> }): Promise<void> {
  const ref = ctx.args[0];
  const only = ref ? await resolveRoom(ctx, ref) : undefined;
  const names = new RoomNames(ctx);
  const start: Record<string, number> = {};
  for (const room of [...(await searchRooms(ctx)), ...(only ? [only] : [])]) {
    names.add(room);
    start[room.id] = Number(room.lastSeq);
  }
  const deviceId = ctx.options.device ?? `cli-${randomBytes(4).toString("hex")}`;
  const chat = ctx.session({ deviceId, store: startingAt(start) });

  const print = async (e: RoomEvent) => {
    if (ctx.out.json) return ctx.out.message(RoomEventSchema, e);
    ctx.out.line(formatEvent(e, only ? undefined : await names.label(e.roomId)));
  };
  chat.on("event", (e) => {
    if (only && e.roomId !== only.id) return;
    printed.done = printed.done.then(() => print(e));
  });
  chat.on("resync", (r) => {
    if (only && r.roomId !== only.id) return;
    void names.label(r.roomId).then((label) => {
      ctx.out.note(`${label}: too far behind, continuing from seq ${r.fromSeq} (older events: chat history)`);
    });
  });
  let live = false;
  chat.on("state", (state: ConnectionState) => {
    if (state === "reconnecting" && live) ctx.out.note("connection lost; reconnecting…");
    if (state === "live" && live) ctx.out.note("live again");
  });
  chat.on("error", (err) => {
    if (chat.state === "closed") finish(err);
    else ctx.out.note(`warning: ${err.code}: ${err.message}`);
  });
  chat.connect().then(
    () => {
      live = true;
      const what = only ? roomLabel(only) : "all your rooms";
      ctx.out.note(`following ${what} as device ${tokenDevice(ctx.token) ?? deviceId} (Ctrl-C to stop)`);
    },
    (err) => finish(err),
  );
}
