import { create, toBinary } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import {
  type ChatService,
  RoomEventSchema,
  ServerFrameSchema,
  type SyncDevicesRequest,
  SyncResponseSchema,
} from "@service-chat/api";
import type { Identity } from "@service-chat/core";
import { createLogger } from "@service-chat/core";
import { until } from "@service-chat/testing/until";
import { describe, expect, it } from "vitest";
import { chatClientPort } from "../../src/session/chat-port.js";
import { EncodedEvent } from "../../src/session/encoded-event.js";
import { OrderedDelivery, type SyncPage } from "../../src/session/ordered-delivery.js";

const identity: Identity = { profileId: "p", contactId: "", deviceId: "" };
const shared = create(RoomEventSchema, { roomId: "r", seq: 1n });
const page = (seq: number, events = [shared]) =>
  create(SyncResponseSchema, { cursors: [{ roomId: "r", seq: BigInt(seq) }], events });

/** A ChatService whose SyncDevices answers each device by its token ("bad…": an error), recording the calls. */
function fakeChat(o: { unimplemented?: boolean; refuseCall?: boolean; encoded?: boolean } = {}) {
  const calls: { method: string; devices: number; authorization?: string; encodedEvents?: boolean }[] = [];
  const chat = {
    async sync(req: { limit: number }, options: { headers: { authorization: string } }) {
      calls.push({ method: "sync", devices: 1 });
      expect(options.headers.authorization).toMatch(/^Bearer t/);
      return page(req.limit);
    },
    async syncDevices(req: SyncDevicesRequest, options: { headers: { authorization: string } }) {
      calls.push({ method: "syncDevices", devices: req.devices.length, authorization: options.headers.authorization });
      expect(req.encodedEvents).toBe(true);
      if (o.unimplemented) throw new ConnectError("no such method", Code.Unimplemented);
      if (o.refuseCall) throw new ConnectError("token expired", Code.Unauthenticated);
      return {
        devices: req.devices.map(({ token, request }) =>
          token.startsWith("bad")
            ? {
                result: { case: "error", value: { code: "unauthenticated", message: "token expired" } },
                eventIndexes: [],
              }
            : { result: { case: "response", value: page(request?.limit ?? 0) }, eventIndexes: [0] },
        ),
        // A service that knows encoded_events answers the events in binary; an older one, as messages.
        events: o.encoded ? [] : [shared],
        encodedEvents: o.encoded ? [toBinary(RoomEventSchema, shared)] : [],
      };
    },
  } as unknown as Client<typeof ChatService>;
  return { chat, calls };
}

describe("the ChatService port of a gateway of its own", () => {
  it("sends the Syncs of one turn in one SyncDevices call, and answers each device its own page or error", async () => {
    const { chat, calls } = fakeChat();
    const open = chatClientPort(chat);
    const tokens = Array.from({ length: 450 }, (_, i) => (i === 7 ? "bad" : `t${i}`));
    const answers = await Promise.allSettled(
      tokens.map((token, i) =>
        open({ identity: { ...identity, expiresAt: 1000 + (i % 120) }, token, deviceId: "d" }).sync([], i + 1),
      ),
    );
    // Each call carries, as its own token, the one of its devices that expires last.
    expect(calls).toEqual([
      { method: "syncDevices", devices: 200, authorization: "Bearer t119" },
      { method: "syncDevices", devices: 200, authorization: "Bearer t239" },
      { method: "syncDevices", devices: 50, authorization: "Bearer t449" },
    ]);
    answers.forEach((a, i) => {
      if (i === 7) expect(a).toMatchObject({ status: "rejected", reason: { code: Code.Unauthenticated } });
      else expect(a).toEqual({ status: "fulfilled", value: page(i + 1) });
    });
    // An event several pages hold, sent once, is one object for all of them.
    const [a, b] = answers as PromiseFulfilledResult<SyncPage>[];
    expect(a?.value.events[0]).toBe(b?.value.events[0]);
  });

  it("takes events the service sent in binary: read once per call for their room and seq, and their frames made from the same bytes", async () => {
    const { chat } = fakeChat({ encoded: true });
    const open = chatClientPort(chat);
    const pages = await Promise.all([1, 2].map((n) => open({ identity, token: `t${n}`, deviceId: "d" }).sync([], n)));
    expect(pages.map((p) => ({ ...p, events: [] }))).toEqual([
      { ...page(1), events: [] },
      { ...page(2), events: [] },
    ]);
    const [event] = pages[0]?.events ?? [];
    expect(event).toBeInstanceOf(EncodedEvent);
    expect(event).toMatchObject({ roomId: "r", seq: 1 });
    expect(pages[1]?.events[0]).toBe(event);
    // Whoever reads the frame's event gets all of it.
    expect((event as EncodedEvent).frame.frame.value).toEqual(shared);
    // Replayed to a device, the event's frame is what encoding the frame would give.
    const written: Uint8Array[] = [];
    const delivery = new OrderedDelivery(
      {
        sync: async () => pages[0] as SyncPage,
        emit: (frame, bytes) => {
          if (frame.frame.case === "event") written.push(new Uint8Array(bytes as Uint8Array));
        },
        close: () => {},
      },
      { replayPageSize: 500, maxHeldFrames: 10 },
      createLogger("silent"),
    );
    expect(await delivery.replay([])).toBe(1);
    expect(written).toEqual([
      toBinary(ServerFrameSchema, create(ServerFrameSchema, { frame: { case: "event", value: shared } })),
    ]);
  });

  it("keeps two calls under way; the Syncs asked for meanwhile go together in the next", async () => {
    const calls: number[] = [];
    const gates: (() => void)[] = [];
    const chat = {
      async syncDevices(req: SyncDevicesRequest) {
        calls.push(req.devices.length);
        await new Promise<void>((open) => gates.push(open));
        return {
          devices: req.devices.map(() => ({ result: { case: "response", value: page(1, []) } })),
          events: [],
          encodedEvents: [],
        };
      },
    } as unknown as Client<typeof ChatService>;
    const open = chatClientPort(chat);
    const sync = (n: number) => open({ identity, token: `t${n}`, deviceId: "d" }).sync([], 1);
    const first = [sync(1)];
    await until("the first call", () => calls.length === 1);
    first.push(sync(2));
    await until("the second call", () => calls.length === 2);
    const later = [3, 4, 5, 6].map(sync);
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual([1, 1]);
    gates.shift()?.();
    await until("the third call", () => calls.length === 3);
    expect(calls).toEqual([1, 1, 4]);
    for (const g of gates.splice(0)) g();
    expect(await Promise.all([...first, ...later])).toHaveLength(6);
    expect(calls).toEqual([1, 1, 4]);
  });

  it("asks device by device when the call itself is refused, so no device pays for another's token", async () => {
    const { chat, calls } = fakeChat({ refuseCall: true });
    const open = chatClientPort(chat);
    const pages = await Promise.all([1, 2].map((n) => open({ identity, token: `t${n}`, deviceId: "d" }).sync([], n)));
    expect(pages).toEqual([page(1), page(2)]);
    expect(calls.map((c) => c.method)).toEqual(["syncDevices", "sync", "sync"]);
  });

  it("asks device by device when the Default Service does not know SyncDevices", async () => {
    const { chat, calls } = fakeChat({ unimplemented: true });
    const open = chatClientPort(chat);
    const first = await Promise.all([1, 2].map((n) => open({ identity, token: `t${n}`, deviceId: "d" }).sync([], n)));
    expect(first).toEqual([page(1), page(2)]);
    expect(await open({ identity, token: "t3", deviceId: "d" }).sync([], 3)).toEqual(page(3));
    expect(calls.map((c) => c.method)).toEqual(["syncDevices", "sync", "sync", "sync"]);
  });
});
