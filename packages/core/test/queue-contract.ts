import { until } from "@service-chat/testing/until";
import { afterEach, describe, expect, it } from "vitest";
import type { EventStream, LiveBus, StreamEntry } from "../src/queue/ports.js";

/**
 * The contract every queue backend passes. `open` makes a fresh pair on a name of its own; `reopen`
 * (when the backend is durable beyond the process) opens the same name again, as a restarted
 * process would; `another` (when the backend reaches beyond the process) opens a live bus of the
 * same name as another process would. `redeliveryMs` is what the backend was opened with.
 */
export interface Backend {
  open(): Promise<{
    stream: EventStream;
    live: LiveBus;
    reopen?: () => Promise<EventStream>;
    another?: () => Promise<LiveBus>;
  }>;
  redeliveryMs: number;
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function queueContract(name: string, backend: Backend): void {
  describe(`${name}: event stream`, () => {
    const closers: (() => Promise<void>)[] = [];
    const controllers: AbortController[] = [];
    afterEach(async () => {
      for (const c of controllers.splice(0)) c.abort();
      for (const close of closers.splice(0)) await close().catch(() => {});
    });
    const open = async () => {
      const q = await backend.open();
      closers.push(
        () => q.stream.close(),
        () => q.live.close(),
      );
      return q;
    };
    const consume = (
      stream: EventStream,
      group: string,
      partition: number,
      handler: (e: StreamEntry) => Promise<void>,
    ) => {
      const c = new AbortController();
      controllers.push(c);
      const done = stream.consume(group, partition, handler, c.signal);
      return { stop: () => c.abort(), done };
    };

    it("answers a ping while its backend is reachable (readiness)", async () => {
      const { stream } = await open();
      await expect(stream.ping()).resolves.toBeUndefined();
    });

    it("hands out entries in publish order, each once, including ones published while consuming", async () => {
      const { stream } = await open();
      await stream.publish(0, [enc("a"), enc("b")]);
      const seen: string[] = [];
      const deliveries: number[] = [];
      consume(stream, "g", 0, async (e) => {
        seen.push(dec(e.data));
        deliveries.push(e.deliveries);
      });
      await until("a and b", () => seen.length === 2);
      await stream.publish(0, [enc("c")]);
      await stream.publish(0, [enc("d"), enc("e")]);
      // A later entry, once handed out, shows that nothing else came before it.
      await stream.publish(0, [enc("last")]);
      await until("the last entry", () => seen.includes("last"));
      expect(seen).toEqual(["a", "b", "c", "d", "e", "last"]);
      expect(deliveries).toEqual([1, 1, 1, 1, 1, 1]);
      await until("the group to have acknowledged everything", async () => (await stream.lag("g", 0)) === 0);
    });

    it("keeps partitions apart and refuses a partition out of range", async () => {
      const { stream } = await open();
      await stream.publish(0, [enc("zero")]);
      await stream.publish(1, [enc("one")]);
      const seen: string[] = [];
      consume(stream, "g", 1, async (e) => void seen.push(dec(e.data)));
      await stream.publish(1, [enc("one later")]);
      await until("partition 1's entries", () => seen.includes("one later"));
      expect(seen).toEqual(["one", "one later"]);
      await expect(stream.publish(stream.partitions, [enc("x")])).rejects.toThrow();
    });

    it("hands a failed entry out again, before any later one", async () => {
      const { stream } = await open();
      await stream.publish(0, [enc("a"), enc("b"), enc("c")]);
      const seen: string[] = [];
      let failures = 0;
      consume(stream, "g", 0, async (e) => {
        seen.push(`${dec(e.data)}${e.deliveries}`);
        if (dec(e.data) === "b" && failures++ < 2) throw new Error("boom");
      });
      await until("c after b's retries", () => seen.includes("c1"));
      expect(seen).toEqual(["a1", "b1", "b2", "b3", "c1"]);
    });

    it("lets one consumer of a group handle a partition at a time, in order, each entry once", async () => {
      const { stream } = await open();
      const n = 40;
      await stream.publish(
        0,
        Array.from({ length: n }, (_, i) => enc(String(i))),
      );
      const seen: number[] = [];
      let inFlight = 0;
      let maxInFlight = 0;
      const handler = async (e: StreamEntry) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await sleep(2);
        seen.push(Number(dec(e.data)));
        inFlight--;
      };
      consume(stream, "g", 0, handler);
      consume(stream, "g", 0, handler);
      await until("every entry", () => seen.length >= n);
      await stream.publish(0, [enc(String(n))]);
      await until("a later entry", () => seen.includes(n));
      expect(maxInFlight).toBe(1);
      expect(seen).toEqual(Array.from({ length: n + 1 }, (_, i) => i));
    });

    it("hands the entry of a consumer that died to another, before later entries", async () => {
      const { stream } = await open();
      await stream.publish(0, [enc("a"), enc("b"), enc("c")]);
      const first: string[] = [];
      const dying = consume(stream, "g", 0, async (e) => {
        first.push(dec(e.data));
        if (dec(e.data) === "b") await new Promise(() => {}); // never finishes: the process "dies" here
      });
      await until("b to be taken", () => first.includes("b"));
      dying.stop();
      const second: string[] = [];
      const deliveries: number[] = [];
      consume(stream, "g", 0, async (e) => {
        second.push(dec(e.data));
        deliveries.push(e.deliveries);
      });
      await until("b and c on the second consumer", () => second.length === 2);
      expect(first).toEqual(["a", "b"]);
      expect(second).toEqual(["b", "c"]);
      expect(deliveries[0]).toBeGreaterThan(1);
    });

    it("gives every group every entry", async () => {
      const { stream } = await open();
      await stream.publish(0, [enc("a"), enc("b")]);
      const one: string[] = [];
      const two: string[] = [];
      consume(stream, "one", 0, async (e) => void one.push(dec(e.data)));
      consume(stream, "two", 0, async (e) => void two.push(dec(e.data)));
      await until("both groups to have both entries", () => one.length === 2 && two.length === 2);
      expect(one).toEqual(["a", "b"]);
      expect(two).toEqual(["a", "b"]);
    });

    it("counts what a group has not acknowledged", async () => {
      const { stream } = await open();
      await stream.publish(0, [enc("a"), enc("b"), enc("c")]);
      expect(await stream.lag("lagging", 0)).toBe(3);
      const seen: string[] = [];
      const c = consume(stream, "lagging", 0, async (e) => {
        seen.push(dec(e.data));
        if (dec(e.data) === "b") await new Promise(() => {}); // stuck on b
      });
      await until("a and b", () => seen.length === 2);
      c.stop();
      await c.done;
      await until("a's acknowledgement to count", async () => (await stream.lag("lagging", 0)) === 2);
    });

    it("keeps entries and positions across a restart", async () => {
      const q = await open();
      if (!q.reopen) return; // in-process only: nothing outlives the process
      await q.stream.publish(0, [enc("a"), enc("b"), enc("c")]);
      const seen: string[] = [];
      const c = consume(q.stream, "g", 0, async (e) => {
        seen.push(dec(e.data));
        if (dec(e.data) === "b") await new Promise(() => {}); // the process stops while on b
      });
      await until("a and b", () => seen.length === 2);
      c.stop();
      await c.done;
      await q.stream.close();
      const again = await q.reopen();
      closers.push(() => again.close());
      const after: string[] = [];
      consume(again, "g", 0, async (e) => void after.push(dec(e.data)));
      await until("b and c after the restart", () => after.length === 2);
      expect(seen).toEqual(["a", "b"]);
      expect(after).toEqual(["b", "c"]);
    });
  });

  describe(`${name}: live subjects`, () => {
    const closers: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const close of closers.splice(0)) await close().catch(() => {});
    });
    const open = async () => {
      const q = await backend.open();
      closers.push(
        () => q.stream.close(),
        () => q.live.close(),
      );
      return q.live;
    };

    /** A subject with characters the backends give meaning to (dots, @) kept in one token. */
    const userSubject = (name: string) => `user.${Buffer.from(name).toString("base64url")}`;

    it("delivers once to every subscriber: in the publishing process and in another", async (ctx) => {
      const q = await backend.open();
      closers.push(
        () => q.stream.close(),
        () => q.live.close(),
      );
      if (!q.another) return ctx.skip();
      const here = q.live;
      const there = await q.another();
      closers.push(() => there.close());
      const s = userSubject("erin");
      const got: Record<string, string[]> = { here: [], there: [] };
      await here.subscribe(s, (d) => void got.here?.push(dec(d)));
      await there.subscribe(s, (d) => void got.there?.push(dec(d)));
      for (let i = 0; i < 20; i++) here.publish([s], enc(`h${i}`));
      there.publish([s], enc("t"));
      await Promise.all([here.flush(), there.flush()]);
      // The last of each side's messages seen on both sides: anything doubled has come by then.
      here.publish([s], enc("h-end"));
      there.publish([s], enc("t-end"));
      await Promise.all([here.flush(), there.flush()]);
      for (const side of ["here", "there"] as const) {
        await until(`both ends ${side}`, () => got[side]?.includes("h-end") && got[side]?.includes("t-end"));
        const mine = (got[side] ?? []).filter((m) => m.startsWith("h"));
        expect(mine, side).toEqual([...Array.from({ length: 20 }, (_, i) => `h${i}`), "h-end"]);
        expect(
          (got[side] ?? []).filter((m) => m.startsWith("t")),
          side,
        ).toEqual(["t", "t-end"]);
      }
    });

    it("delivers to current subscribers of each subject, in publish order", async () => {
      const live = await open();
      const alice = userSubject("alice@example.com");
      const bob = userSubject("bob.smith");
      const got: Record<string, string[]> = { a: [], b: [] };
      await live.subscribe(alice, (d) => void got.a?.push(dec(d)));
      await live.subscribe(bob, (d) => void got.b?.push(dec(d)));
      for (let i = 0; i < 50; i++) live.publish([alice, bob], enc(String(i)));
      live.publish([bob], enc("only bob"));
      await live.flush();
      await until("every message", () => got.a?.length === 50 && got.b?.length === 51);
      expect(got.a).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
      expect(got.b?.at(-1)).toBe("only bob");
    });

    it("does not keep messages for later subscribers, nor deliver after unsubscribe", async () => {
      const live = await open();
      const s = userSubject("carol");
      live.publish([s], enc("before"));
      await live.flush();
      const got: string[] = [];
      const off = await live.subscribe(s, (d) => void got.push(dec(d)));
      // A subscriber to another subject, there until the end: once it has a message published
      // after "after", anything the first one would wrongly get has come too.
      const witness: string[] = [];
      await live.subscribe(userSubject("carol's witness"), (d) => void witness.push(dec(d)));
      live.publish([s], enc("during"));
      await live.flush();
      await until("during", () => got.length === 1);
      await off();
      live.publish([s], enc("after"));
      live.publish([userSubject("carol's witness")], enc("later"));
      await live.flush();
      await until("the witness's message", () => witness.includes("later"));
      expect(got).toEqual(["during"]);
    });

    it("does not leak between buses of different names", async () => {
      const one = await open();
      const two = await open();
      const s = userSubject("dave");
      const got: string[] = [];
      await two.subscribe(s, (d) => void got.push(dec(d)));
      one.publish([s], enc("not for you"));
      await one.flush();
      // Published after the other bus's message reached the server: it comes after anything that leaked.
      two.publish([s], enc("mine"));
      await two.flush();
      await until("the bus's own message", () => got.includes("mine"));
      expect(got).toEqual(["mine"]);
    });
  });
}
