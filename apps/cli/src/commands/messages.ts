import { randomUUID } from "node:crypto";
import { AckEventSchema, type Room, type RoomEvent, RoomEventSchema, RoomEventType } from "@service-chat/api";
import { backoff, isPermanent } from "@service-chat/sdk";
import { CALL, type Context } from "../context.js";
import { CliError, networkFailure, rpcCode } from "../errors.js";
import { formatEvent, roomLabel } from "../output.js";
import { collect, RoomNames, resolveRoom } from "../rooms.js";

/** Attempts after the first; the delays between them grow from 0.5 s to at most 4 s (jittered). */
const RETRIES = 5;

/**
 * Worth sending again (with the same client id, so it is stored once): no answer, or an answer
 * that is not about the message itself (unavailable, internal, aborted, resource_exhausted, …).
 */
function transient(err: unknown): string | undefined {
  if (networkFailure(err)) return "no answer";
  if (err instanceof CliError) return undefined;
  const code = rpcCode(err) ?? (err as { code?: unknown })?.code;
  return typeof code === "string" && !isPermanent(code) ? code : undefined;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8").replace(/\n$/, "");
}

/** `chat send <room> <text...> [--client-id id]`: `-` as the text reads it from stdin. */
export async function send(ctx: Context): Promise<void> {
  const ref = ctx.arg(0, "room");
  let text = ctx.args.slice(1).join(" ");
  if (text === "-") text = await readStdin();
  if (text.trim() === "") throw ctx.usage("missing <text>");
  const clientId = ctx.options["client-id"] ?? `cli-${randomUUID()}`;
  if (Buffer.byteLength(clientId) > 128) throw ctx.usage("--client-id must be at most 128 bytes");
  let room: Room | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      room ??= await resolveRoom(ctx, ref);
      const event = {
        roomId: room.id,
        type: RoomEventType.TEXT,
        clientId,
        content: { case: "text" as const, value: { body: text } },
      };
      const { ack } = await ctx.api.sendEvent({ event: [event] }, CALL);
      const a = ack[0];
      if (!a) throw new Error("the server answered without an ack");
      if (a.error) throw Object.assign(new Error(a.error.message), { code: a.error.code });
      if (ctx.out.json) return ctx.out.message(AckEventSchema, a);
      return ctx.out.line(`sent to ${roomLabel(room)}: seq ${a.seq}, id ${a.eventId}`);
    } catch (err) {
      const why = transient(err);
      if (attempt >= RETRIES || !why) throw err;
      const delay = Math.max(100, backoff(attempt, 500, 4000));
      ctx.out.note(`retrying in ${(delay / 1000).toFixed(1)} s (${why}); same client id ${clientId}, stored once`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

function printEvents(ctx: Context, events: RoomEvent[], labels?: Map<string, string>): void {
  for (const e of events) {
    if (ctx.out.json) ctx.out.message(RoomEventSchema, e);
    else ctx.out.line(formatEvent(e, labels?.get(e.roomId)));
  }
}

/** `chat history <room> [--limit n]`: the newest n events, oldest first. */
export async function history(ctx: Context): Promise<void> {
  ctx.maxArgs(1);
  const max = ctx.limit(20);
  const room = await resolveRoom(ctx, ctx.arg(0, "room"));
  const events = await collect(async (cursor, limit) => {
    const r = await ctx.api.getHistory({ roomId: room.id, cursor, limit }, CALL);
    return { items: r.events, next: r.nextCursor };
  }, max);
  printEvents(ctx, events.reverse());
}

/** `chat search <query...> [--room <room>] [--limit n]`: matching messages, newest first. */
export async function search(ctx: Context): Promise<void> {
  const query = ctx.args.join(" ").trim();
  if (!query) throw ctx.usage("missing <query>");
  const max = ctx.limit(20);
  const room = ctx.options.room ? await resolveRoom(ctx, ctx.options.room) : undefined;
  const events = await collect(async (cursor, limit) => {
    const r = await ctx.api.searchEvents({ query, roomId: room?.id ?? "", cursor, limit }, CALL);
    return { items: r.events, next: r.nextCursor };
  }, max);
  if (!ctx.out.json && events.length === 0) return ctx.out.note(`nothing matches "${query}"`);
  if (ctx.out.json || room) return printEvents(ctx, events);
  const names = new RoomNames(ctx);
  const ids = [...new Set(events.map((e) => e.roomId))];
  const labels = new Map(await Promise.all(ids.map(async (id) => [id, await names.label(id)] as const)));
  printEvents(ctx, events, labels);
}
