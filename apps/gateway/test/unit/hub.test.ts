import { create, toBinary } from "@bufbuild/protobuf";
import { type ServerFrame, ServerFrameSchema } from "@service-chat/api";
import { createLogger, MemoryBus } from "@service-chat/core";
import {
  DELIVERIES_SUBJECT,
  decodeDelivery,
  encodeRecipient,
  publishToRecipients,
  publishToUsers,
  RECIPIENTS_PER_MESSAGE,
} from "@service-chat/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { type HubMember, LiveHub } from "../../src/hub.js";

const settle = () => new Promise((r) => setImmediate(r));

class Device implements HubMember {
  readonly got: { frame: ServerFrame; bytes: Uint8Array }[] = [];
  replacedTimes = 0;
  constructor(
    readonly connectionId: string,
    readonly profileId: string,
  ) {}
  deliver(frame: ServerFrame, bytes: Uint8Array): void {
    this.got.push({ frame, bytes });
  }
  replaced(): void {
    this.replacedTimes++;
  }
}

const pong = (n: number) =>
  toBinary(ServerFrameSchema, create(ServerFrameSchema, { requestId: `r${n}`, frame: { case: "pong", value: {} } }));

const bus = new MemoryBus();
let hubs: LiveHub[] = [];
afterEach(async () => {
  for (const h of hubs) await h.stop();
  hubs = [];
});
async function hub(id: string): Promise<LiveHub> {
  const h = new LiveHub(bus, id, createLogger("silent"));
  hubs.push(h);
  await h.start();
  return h;
}

describe("LiveHub", () => {
  it("hands a delivery to every local device of its recipients, and to nobody else", async () => {
    const one = await hub("gw-1");
    const two = await hub("gw-2");
    const annPhone = new Device("c1", "ann");
    const annLaptop = new Device("c2", "ann");
    const ben = new Device("c3", "ben");
    const cid = new Device("c4", "cid");
    await one.add(annPhone);
    await one.add(annLaptop);
    await two.add(ben);
    await two.add(cid);
    const bytes = pong(1);
    publishToUsers(bus, ["ann", "ben", "dee"], bytes);
    await settle();
    for (const d of [annPhone, annLaptop, ben]) {
      expect(d.got.map((g) => g.frame.requestId)).toEqual(["r1"]);
      expect(new Uint8Array(d.got[0]?.bytes ?? [])).toEqual(bytes);
    }
    expect(cid.got).toEqual([]);
    // One decode per gateway: both of ann's devices share the frame object.
    expect(annPhone.got[0]?.frame).toBe(annLaptop.got[0]?.frame);
  });

  it("splits a large recipient list and still reaches everyone once", async () => {
    const h = await hub("gw-1");
    const users = Array.from({ length: RECIPIENTS_PER_MESSAGE * 2 + 5 }, (_, i) => `u${i}`);
    const devices = users.map((u, i) => new Device(`c${i}`, u));
    for (const d of devices) await h.add(d);
    const messages: Uint8Array[] = [];
    const off = await bus.subscribe(DELIVERIES_SUBJECT, (d) => messages.push(d));
    publishToUsers(bus, users, pong(2));
    await settle();
    await off();
    expect(messages).toHaveLength(3);
    expect(devices.every((d) => d.got.length === 1)).toBe(true);
  });

  it("writes recipients encoded ahead of time as a LiveDelivery any protobuf reader decodes", async () => {
    const users = ["ann", "bjørn@example.com", "用户-7", ""];
    const messages: Uint8Array[] = [];
    const off = await bus.subscribe(DELIVERIES_SUBJECT, (d) => messages.push(d));
    const frame = pong(4);
    publishToRecipients(bus, users.map(encodeRecipient), frame);
    await settle();
    await off();
    const decoded = decodeDelivery(messages[0] as Uint8Array);
    expect(decoded.recipients).toEqual(users);
    expect(new Uint8Array(decoded.frame)).toEqual(frame);
  });

  it("stops delivering to a removed device, and skips bytes that are not a delivery", async () => {
    const h = await hub("gw-1");
    const a = new Device("c1", "ann");
    const b = new Device("c2", "ann");
    await h.add(a);
    await h.add(b);
    h.remove(a);
    bus.publish([DELIVERIES_SUBJECT], new Uint8Array([0xff, 0xff, 0xff]));
    publishToUsers(bus, ["ann"], pong(3));
    await settle();
    expect(a.got).toEqual([]);
    expect(b.got.map((g) => g.frame.requestId)).toEqual(["r3"]);
  });

  it("closes a replaced connection here at once, or on another gateway through its control subject", async () => {
    const one = await hub("gw-1");
    const two = await hub("gw-2");
    const here = new Device("c1", "ann");
    const there = new Device("c2", "ann");
    await one.add(here);
    await two.add(there);
    one.replace("c1", "gw-1");
    one.replace("c2", "gw-2");
    await settle();
    expect([here.replacedTimes, there.replacedTimes]).toEqual([1, 1]);
  });
});
