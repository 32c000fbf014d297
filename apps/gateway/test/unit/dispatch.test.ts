import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type AckEvent,
  AckEventSchema,
  type ClientFrame,
  ClientFrameSchema,
  type RoomEvent,
  type ServerFrame,
  SyncResponseSchema,
} from "@service-chat/api";
import { createLogger } from "@service-chat/core";
import { DISCONNECT, type Disconnect } from "@service-chat/protocol";
import { until } from "@service-chat/testing/until";
import { describe, expect, it } from "vitest";
import type { ChatPort } from "../../src/session/chat-port.js";
import { Dispatcher, type DispatchTarget } from "../../src/session/dispatch.js";

const limits = { eventsPerSecond: 100_000, rateLimitGraceSec: 5, maxPendingSends: 1000 };

const frame = (requestId: string, f: MessageInitShape<typeof ClientFrameSchema>["frame"]): ClientFrame =>
  create(ClientFrameSchema, { requestId, frame: f });
const send = (requestId: string, roomId: string) =>
  frame(requestId, { case: "send", value: { roomId, clientId: requestId } });

/**
 * A dispatcher on a port whose calls wait until the test answers them; what the device is sent
 * is kept as "ack:<request id>:<seq>" or "error:<request id>:<code>".
 */
function harness(maxPendingSends = limits.maxPendingSends) {
  const calls: { events: RoomEvent[]; answer(acks: AckEvent[]): void; fail(err: unknown): void }[] = [];
  const signals: string[] = [];
  const written: string[] = [];
  const closed: Disconnect[] = [];
  let seq = 0;
  const port: ChatPort = {
    send: (events) => new Promise((resolve, reject) => calls.push({ events, answer: resolve, fail: reject })),
    ack: async () => {
      signals.push("ack");
    },
    markRead: async (roomId, s) => {
      signals.push(`read:${roomId}:${s}`);
    },
    typing: async (roomId, active) => {
      await new Promise((r) => setTimeout(r, active ? 5 : 0));
      signals.push(`typing:${roomId}:${active}`);
    },
    presence: async () => {
      signals.push("presence");
    },
    sync: async () => create(SyncResponseSchema, {}),
  };
  const target: { -readonly [K in keyof DispatchTarget]: DispatchTarget[K] } = {
    state: "hello",
    port: undefined,
    async hello() {
      target.state = "live";
      target.port = port;
    },
    emit(f: ServerFrame) {
      const v = f.frame;
      if (v.case === "ack") written.push(`ack:${f.requestId}:${v.value.seq}`);
      else if (v.case === "error") written.push(`error:${f.requestId}:${v.value.code}`);
      else written.push(v.case ?? "");
    },
    close(reason) {
      closed.push(reason);
      target.state = "closed";
    },
  };
  const dispatcher = new Dispatcher(target, { ...limits, maxPendingSends }, createLogger("silent"));
  dispatcher.receive(frame("h", { case: "hello", value: {} }));
  /** Answers the oldest call still waiting: each event stored with the next seq. */
  const store = async () => {
    await until("a send call", () => calls.length > 0);
    const call = calls.shift();
    call?.answer(call.events.map((e) => create(AckEventSchema, { roomId: e.roomId, seq: BigInt(++seq) })));
  };
  return { dispatcher, calls, signals, written, closed, store };
}

describe("a device's frames", () => {
  it("pipeline sends: those that arrive while a call is out go together in the next, acked in order", async () => {
    const { dispatcher, calls, written, store } = harness();
    dispatcher.receive(send("1", "a"));
    await until("the first call", () => calls.length === 1);
    for (const id of ["2", "3", "4"]) dispatcher.receive(send(id, id === "3" ? "b" : "a"));
    await new Promise((r) => setImmediate(r));
    expect(calls.length).toBe(1); // one call out at a time
    await store();
    await until("the second call", () => calls.length === 1);
    expect(calls[0]?.events.map((e) => `${e.roomId}:${e.clientId}`)).toEqual(["a:2", "b:3", "a:4"]);
    await store();
    await until("every ack", () => written.length === 4);
    expect(written).toEqual(["ack:1:1", "ack:2:2", "ack:3:3", "ack:4:4"]);
  });

  it("sends at most 100 events per call, in arrival order", async () => {
    const { dispatcher, calls, written, store } = harness();
    for (let i = 0; i < 250; i++) dispatcher.receive(send(String(i), "a"));
    for (const size of [1, 100, 100, 49]) {
      await until(`a call of ${size}`, () => calls.length === 1);
      expect(calls[0]?.events.length).toBe(size);
      await store();
    }
    await until("every ack", () => written.length === 250);
    expect(written).toEqual(Array.from({ length: 250 }, (_, i) => `ack:${i}:${i + 1}`));
  });

  it("refuses sends beyond the pending bound, storing none of them", async () => {
    const { dispatcher, calls, written, store } = harness(3);
    for (let i = 0; i < 5; i++) dispatcher.receive(send(String(i), "a"));
    await until("the two refusals", () => written.length === 2);
    expect(written).toEqual(["error:3:resource_exhausted", "error:4:resource_exhausted"]);
    await store();
    await store();
    await until("three acks", () => written.length === 5);
    expect(calls.length).toBe(0);
  });

  it("answers every send of a refused call with the call's error, and goes on", async () => {
    const { dispatcher, calls, written, closed, store } = harness();
    dispatcher.receive(send("1", "a"));
    dispatcher.receive(send("2", "a"));
    await until("the first call", () => calls.length === 1);
    calls.shift()?.fail(new ConnectError("database unreachable", Code.Unavailable));
    await until("the second call", () => calls.length === 1);
    await store();
    await until("the answers", () => written.length === 2);
    expect(written).toEqual(["error:1:unavailable", "ack:2:1"]);
    expect(closed).toEqual([]);
  });

  it("ends the session when a call says the token is no longer good", async () => {
    const { dispatcher, calls, closed } = harness();
    dispatcher.receive(send("1", "a"));
    await until("the call", () => calls.length === 1);
    calls.shift()?.fail(new ConnectError("token expired", Code.Unauthenticated));
    await until("the close", () => closed.length === 1);
    expect(closed[0]).toBe(DISCONNECT.authExpired);
  });

  it("handles signals in order among themselves, without waiting for sends", async () => {
    const { dispatcher, calls, signals } = harness();
    dispatcher.receive(send("1", "a"));
    dispatcher.receive(frame("t1", { case: "typing", value: { roomId: "a", active: true } }));
    dispatcher.receive(frame("t2", { case: "typing", value: { roomId: "a", active: false } }));
    dispatcher.receive(frame("r", { case: "read", value: { roomId: "a", seq: 3n } }));
    await until("the signals", () => signals.length === 3);
    expect(signals).toEqual(["typing:a:true", "typing:a:false", "read:a:3"]);
    expect(calls.length).toBe(1); // the send is still out
  });
});

describe("logs", () => {
  it("name the device connection on an unexpected failure", async () => {
    const lines: Record<string, unknown>[] = [];
    const out = { write: (s: string) => void lines.push(JSON.parse(s)) };
    const failing: ChatPort = {
      send: async () => {
        throw new Error("boom");
      },
    } as unknown as ChatPort;
    const target: { -readonly [K in keyof DispatchTarget]: DispatchTarget[K] } = {
      connectionId: "conn-42",
      state: "hello",
      port: undefined,
      async hello() {
        target.state = "live";
        target.port = failing;
      },
      emit() {},
      close() {},
    };
    const dispatcher = new Dispatcher(target, limits, createLogger("error", false, out));
    dispatcher.receive(frame("h", { case: "hello", value: {} }));
    dispatcher.receive(send("s1", "r1"));
    await until("the failure to be logged", () => lines.some((l) => l.msg === "frame failed"));
    expect(lines.find((l) => l.msg === "frame failed")).toMatchObject({ connection_id: "conn-42" });
  });
});
