import { RoomEventType, RoomType } from "@service-chat/api";
import { startTestApp, type TestApp, until } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bigintToString,
  type ChatClient,
  type ChatClientOptions,
  createChatClient,
  memoryStore,
  type Receipt,
  type RoomEvent,
  type TokenRequest,
} from "../../src/index.js";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ HEARTBEAT_INTERVAL_SEC: "1" });
});
const clients: ChatClient[] = [];
afterAll(async () => {
  for (const c of clients) c.close();
  await t?.stop();
});

const client = (user: string, device = "d", extra: Partial<ChatClientOptions> = {}) => {
  const c = createChatClient({
    baseUrl: t.httpUrl,
    getToken: () => t.signer.sign({ sub: user, device_id: device }),
    store: memoryStore(),
    minBackoffMs: 20,
    maxBackoffMs: 200,
    ackIntervalMs: 100,
    ...extra,
  });
  clients.push(c);
  return c;
};

async function room(owner: ChatClient, name: string, members: string[] = []): Promise<string> {
  const { room } = await owner.api.createRoom({
    name,
    type: RoomType.GROUP,
    members: members.map((profileId) => ({ profileId })),
  });
  return room?.id as string;
}

describe("SDK message helpers", () => {
  it("sends a reply, an edit, a reaction, an attachment and a redaction that others receive live as such", async () => {
    const alice = client("h-alice");
    const bob = client("h-bob");
    const roomId = await room(alice, "helpers", ["h-bob"]);
    const seen: RoomEvent[] = [];
    bob.on("event", (e) => e.roomId === roomId && seen.push(e));
    await Promise.all([alice.connect(), bob.connect()]);

    const first = await alice.sendText(roomId, "first");
    const reply = await bob.reply(roomId, first.eventId, "an answer");
    await alice.edit(roomId, first.eventId, "first, edited");
    await bob.react(roomId, first.eventId, "👍");
    await bob.react(roomId, first.eventId, "👍", false);
    const file = await alice.sendAttachment(roomId, {
      uri: "https://files.example.com/a/report.pdf",
      mimeType: "application/pdf",
      sizeBytes: 1234,
      filename: "report.pdf",
      caption: "the report",
    });
    await bob.redact(roomId, reply.eventId, "typo");
    await until("bob to get all seven", () => seen.length >= 8);

    const kinds = seen.slice(1).map((e) => [e.type, e.content.case]);
    expect(kinds).toEqual([
      [RoomEventType.TEXT, "text"],
      [RoomEventType.TEXT, "text"],
      [RoomEventType.EDIT, "edit"],
      [RoomEventType.REACTION, "reaction"],
      [RoomEventType.REACTION, "reaction"],
      [RoomEventType.ATTACHMENT, "attachment"],
      [RoomEventType.REDACTION, "redaction"],
    ]);
    expect(seen[2]?.parentId).toBe(first.eventId);
    expect(seen[4]?.content).toMatchObject({ case: "reaction", value: { key: "👍", add: true } });
    expect(seen[5]?.content).toMatchObject({ case: "reaction", value: { key: "👍", add: false } });
    expect(seen[6]?.content).toMatchObject({
      case: "attachment",
      value: { uri: "https://files.example.com/a/report.pdf", sizeBytes: 1234n, filename: "report.pdf" },
    });
    const { events } = await alice.api.getHistory({ roomId });
    const byId = new Map(events.map((e) => [e.id, e]));
    expect(byId.get(first.eventId)).toMatchObject({
      edited: true,
      content: { case: "text", value: { body: "first, edited" } },
    });
    expect(byId.get(reply.eventId)?.redacted).toBe(true);
    expect(byId.get(file.eventId)?.type).toBe(RoomEventType.ATTACHMENT);
  });

  it("refuses an edit of someone else's message with the API's code", async () => {
    const alice = client("h-alice2");
    const roomId = await room(alice, "edits", ["h-bob2"]);
    const bob = client("h-bob2");
    const mine = await alice.sendText(roomId, "mine");
    await expect(bob.edit(roomId, mine.eventId, "not yours")).rejects.toMatchObject({ code: "permission_denied" });
  });

  it("puts seq into JSON as a string and reads it back exactly", async () => {
    const alice = client("h-json");
    const roomId = await room(alice, "json");
    const ack = await alice.sendText(roomId, "x");
    const json = JSON.stringify({ seq: ack.seq, roomId }, bigintToString);
    expect(json).toBe(`{"seq":"${ack.seq}","roomId":"${roomId}"}`);
    expect(BigInt(JSON.parse(json).seq)).toBe(ack.seq);
  });
});

describe("SDK token provider", () => {
  it("is told when a token was refused, on a call and on the live session, and the SDK carries on with the new one", async () => {
    const asked: TokenRequest[] = [];
    let good = false;
    const c = client("h-token", "d", {
      getToken: async (info) => {
        asked.push(info);
        if (info.refused) good = true;
        return good ? t.signer.sign({ sub: "h-token", device_id: "d" }) : "not-a-token";
      },
    });
    const { room } = await c.api.createRoom({ name: "tokens", type: RoomType.GROUP });
    expect(room?.name).toBe("tokens");
    expect(asked).toEqual([{ refused: false }, { refused: true }]);

    good = false;
    asked.length = 0;
    await c.connect();
    expect(c.state).toBe("live");
    expect(asked.some((a) => a.refused)).toBe(true);
  });
});

describe("SDK new devices and own receipts", () => {
  it("starts a new device from the newest events of each room (newDeviceWindow), not the whole history", async () => {
    const alice = client("h-window-alice");
    const roomId = await room(alice, "long", ["h-window-bob"]);
    await alice.api.sendEvent({
      event: Array.from({ length: 99 }, (_, i) => ({
        roomId,
        type: RoomEventType.TEXT,
        content: { case: "text" as const, value: { body: `m${i}` } },
      })),
    });
    const replayed = async (device: string, newDeviceWindow?: number) => {
      const c = client("h-window-bob", device, newDeviceWindow === undefined ? {} : { newDeviceWindow });
      const seqs: number[] = [];
      c.on("event", (e) => e.roomId === roomId && seqs.push(Number(e.seq)));
      await c.connect();
      c.close();
      return seqs;
    };
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    expect(await replayed("new-1")).toEqual(range(51, 100)); // default: 50
    expect(await replayed("new-2", 10)).toEqual(range(91, 100));
    expect(await replayed("new-3", Number.POSITIVE_INFINITY)).toEqual(range(1, 100));
  });

  it("marks your own read receipts (from your other devices) as yours", async () => {
    const phone = client("h-me", "phone");
    const laptop = client("h-me", "laptop");
    const bob = client("h-you", "bob");
    const roomId = await room(phone, "receipts", ["h-you"]);
    const ack = await phone.sendText(roomId, "hello");
    const atLaptop: Receipt[] = [];
    const atBob: Receipt[] = [];
    laptop.on("receipt", (r) => atLaptop.push(r));
    bob.on("receipt", (r) => atBob.push(r));
    await Promise.all([phone.connect(), laptop.connect(), bob.connect()]);
    bob.markRead(roomId, ack.seq);
    await until("bob's receipt at the laptop", () => atLaptop.some((r) => r.profileId === "h-you"));
    phone.markRead(roomId, ack.seq);
    await until("my own receipt at the laptop", () => atLaptop.some((r) => r.profileId === "h-me"));
    expect(atLaptop.find((r) => r.profileId === "h-me")?.mine).toBe(true);
    expect(atLaptop.find((r) => r.profileId === "h-you")?.mine).toBe(false);
    await until("my receipt at bob's", () => atBob.some((r) => r.profileId === "h-me"));
    expect(atBob.find((r) => r.profileId === "h-me")?.mine).toBe(false);
  });
});
