import { RoomType } from "@service-chat/api";
import { startTestApp, type TestApp, until } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChatClient, createChatClient, memoryStore, type RoomEvent } from "../../src/index.js";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ HEARTBEAT_INTERVAL_SEC: "1", CONNECTION_TIMEOUT_SEC: "5" });
});
afterAll(() => t.stop());

const clients: ChatClient[] = [];
const client = (user: string, device = "d", store = memoryStore()) => {
  const c = createChatClient({
    baseUrl: t.httpUrl,
    getToken: () => t.signer.sign({ sub: user, device_id: device }),
    store,
    minBackoffMs: 20,
    maxBackoffMs: 200,
    ackIntervalMs: 100,
  });
  clients.push(c);
  return c;
};
afterAll(() => {
  for (const c of clients) c.close();
});

describe("the SDK", () => {
  it("sends and receives live, with typed calls and events in order", async () => {
    const alice = client("sdk-alice");
    const bob = client("sdk-bob");
    const { room } = await alice.api.createRoom({
      name: "sdk",
      type: RoomType.GROUP,
      members: [{ profileId: "sdk-bob" }],
    });
    const seen: RoomEvent[] = [];
    bob.on("event", (e) => seen.push(e));
    await Promise.all([alice.connect(), bob.connect()]);
    expect(bob.state).toBe("live");
    const ack = await alice.sendText(room!.id, "hello bob");
    expect(ack.seq).toBe(2n);
    await until("bob to get the message", () => seen.some((e) => e.seq === 2n));
    expect(seen.map((e) => Number(e.seq))).toEqual([1, 2]);
  });

  it("survives 20 forced reconnects during a 2,000-message exchange: every message once, in order", async () => {
    const sender = client("sdk-sender");
    const receiver = client("sdk-receiver");
    const { room } = await sender.api.createRoom({
      name: "storm",
      type: RoomType.GROUP,
      members: [{ profileId: "sdk-receiver" }],
    });
    const roomId = room!.id;
    const seqs: number[] = [];
    const total = 2000;
    let kills = 0;
    receiver.on("event", (e) => {
      if (e.roomId !== roomId) return;
      seqs.push(Number(e.seq));
      // Every 100 messages received, drop the receiver's connection as a network would: no goodbye.
      if (seqs.length % 100 === 0 && kills < 20) {
        kills++;
        (receiver as unknown as { socket?: { close(code: number): void } }).socket?.close(4000);
      }
    });
    await Promise.all([sender.connect(), receiver.connect()]);
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < total; i++) {
      sends.push(sender.sendText(roomId, `m${i}`));
      if (i % 50 === 49) await Promise.all(sends.splice(0));
    }
    await Promise.all(sends);
    await until("all messages", () => seqs.length >= total + 1);
    expect(kills).toBe(20);
    expect(seqs).toEqual(Array.from({ length: total + 1 }, (_, i) => i + 1));
  });

  it("keeps unsent messages and positions in its store across a restart, and sends them once", async () => {
    const store = memoryStore();
    const first = client("sdk-keeper", "laptop", store);
    const { room } = await first.api.createRoom({ name: "keep", type: RoomType.GROUP });
    const roomId = room!.id;
    await first.connect();
    await first.sendText(roomId, "one");
    await until("its own message back", () => first.position(roomId) === 2);
    first.close();
    const second = client("sdk-keeper", "laptop", store);
    const seen: number[] = [];
    second.on("event", (e) => seen.push(Number(e.seq)));
    await second.connect();
    await second.sendText(roomId, "two");
    await until("the new message", () => seen.includes(3));
    expect(seen).toEqual([3]); // nothing replayed twice
  });

  it("reports a refused send as a ChatError with the API's code", async () => {
    const c = client("sdk-refused");
    await c.connect();
    await expect(c.sendText("00000000-0000-7000-8000-000000000000", "x")).rejects.toMatchObject({ code: "not_found" });
  });
});

describe("the SDK's store", () => {
  it("sends a message left unsent by a closed client when the next one connects, exactly once", async () => {
    const store = memoryStore();
    const first = client("sdk-unsent", "tab", store);
    const { room } = await first.api.createRoom({ name: "unsent", type: RoomType.GROUP });
    const roomId = room!.id;
    await first.connect();
    // Sent while the socket is closing: it stays in the outbox of the stored state.
    (first as unknown as { socket?: { close(): void } }).socket?.close();
    void first.sendText(roomId, "left behind", "left-behind-1").catch(() => {});
    await new Promise((r) => setImmediate(r)); // the send reaches the outbox before the close
    first.close();
    expect((await store.load())?.outbox.map((o) => o.clientId)).toEqual(["left-behind-1"]);
    const second = client("sdk-unsent", "tab", store);
    const seen: string[] = [];
    second.on("event", (e) => e.content.case === "text" && seen.push(e.content.value.body));
    await second.connect();
    await until("the message left behind", () => seen.includes("left behind"));
    const { events } = await second.api.getHistory({ roomId });
    expect(events.filter((e) => e.clientId === "left-behind-1")).toHaveLength(1);
  });
});
