import { type CallOptions, type Client, createClient } from "@connectrpc/connect";
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

/**
 * One ChatService client (one HTTP/2 connection) acting as many users: each call passes
 * `await as(user)` as its options, which carry that user's token (minted once per user).
 */
export function chatAsMany(grpcUrl: string, signer: DevSigner): { chat: Chat; as(user: string): Promise<CallOptions> } {
  const chat = createClient(
    ChatService,
    createConnectTransport({ baseUrl: grpcUrl, httpVersion: "2", useBinaryFormat: true }),
  );
  const tokens = new Map<string, Promise<string>>();
  return {
    chat,
    async as(user) {
      let token = tokens.get(user);
      if (!token) {
        token = signer.sign({ sub: user, ttl_s: 6 * 3600 });
        tokens.set(user, token);
      }
      return { headers: { authorization: `Bearer ${await token}` } };
    },
  };
}

/**
 * A group room owned by the caller with `members` (added 1,000 per call, the API's limit; the
 * caller is a member anyway and is left out if named).
 */
export async function createRoom(chat: Chat, name: string, members: string[], options?: CallOptions): Promise<string> {
  const first = members.slice(0, 1000);
  const { room } = await chat.createRoom(
    {
      name,
      type: RoomType.GROUP,
      members: first.map((profileId) => ({ profileId })),
    },
    options,
  );
  const id = room?.id as string;
  for (let i = 1000; i < members.length; i += 1000) {
    await chat.addRoomSubscriptions(
      {
        roomId: id,
        members: members.slice(i, i + 1000).map((profileId) => ({ profileId })),
      },
      options,
    );
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

/** Counts by key (close codes, …) from several device processes, added up. */
export function addCounts(parts: readonly Record<string, number>[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const part of parts) for (const [k, n] of Object.entries(part)) total[k] = (total[k] ?? 0) + n;
  return total;
}
