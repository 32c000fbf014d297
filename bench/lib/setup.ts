import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ChatService, RoomEventType, RoomType } from "@service-chat/api";
import type { DevSigner } from "@service-chat/core";

export type Chat = Client<typeof ChatService>;

/** A ChatService client (Connect binary over h2c) acting as `user`. */
export function chatAs(grpcUrl: string, signer: DevSigner, user: string): Chat {
  let token: Promise<string> | undefined;
  return createClient(
    ChatService,
    createConnectTransport({
      baseUrl: grpcUrl,
      httpVersion: "2",
      useBinaryFormat: true,
      interceptors: [
        (next) => async (req) => {
          token ??= signer.sign({ sub: user, ttl_s: 6 * 3600 });
          req.header.set("authorization", `Bearer ${await token}`);
          return next(req);
        },
      ],
    }),
  );
}

/** A group room owned by `owner` with `members` (added 1,000 per call, the API's limit). */
export async function createRoom(chat: Chat, name: string, members: string[]): Promise<string> {
  const first = members.slice(0, 1000);
  const { room } = await chat.createRoom({
    name,
    type: RoomType.GROUP,
    members: first.map((profileId) => ({ profileId })),
  });
  const id = room?.id as string;
  for (let i = 1000; i < members.length; i += 1000) {
    await chat.addRoomSubscriptions({
      roomId: id,
      members: members.slice(i, i + 1000).map((profileId) => ({ profileId })),
    });
  }
  return id;
}

/** Runs `fn` over items with at most `limit` at once, keeping results in order. */
export async function mapPool<T, R>(items: T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T, i);
      }
    }),
  );
  return out;
}

/** Sends `count` text events to a room in one call; answers the highest seq stored. */
export async function sendTexts(chat: Chat, roomId: string, count: number, tag: string): Promise<number> {
  const { ack } = await chat.sendEvent({
    event: Array.from({ length: count }, (_, i) => ({
      roomId,
      type: RoomEventType.TEXT,
      content: { case: "text" as const, value: { body: `${tag} ${i}` } },
      clientId: `${tag}-${i}`,
    })),
  });
  const failed = ack.find((a) => a.error);
  if (failed) throw new Error(`send refused: ${failed.error?.code} ${failed.error?.message}`);
  return Math.max(...ack.map((a) => Number(a.seq)));
}
