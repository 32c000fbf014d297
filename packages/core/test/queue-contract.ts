import { afterEach, describe, expect, it } from "vitest";
import type { EventStream, LiveBus, StreamEntry } from "../src/queue/ports.js";

/**
 * The contract every queue backend passes. `open` makes a fresh pair on a name of its own; `reopen`
 * (when the backend is durable beyond the process) opens the same name again, as a restarted
 * process would. `redeliveryMs` is what the backend was opened with.
 */
export interface Backend {
  open(): Promise<{ stream: EventStream; live: LiveBus; reopen?: () => Promise<EventStream> }>;
  redeliveryMs: number;
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await sleep(10);
  }
}

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

    it("hands out entries in publish order, each once, including ones published while consuming", async () => {
      const { stream } = await open();
      await stream.publish(0, [enc("a"), enc("b")]);
      const seen: string[] = [];
      const deliveries: number[] = [];
      consume(stream, "g", 0, async (e) => {
        seen.push(dec(e.data));
        deliveries.push(e.deliveries);
      });
      await until(() => seen.length === 2);
      await stream.publish(0, [enc("c")]);
      await stream.publish(0, [enc("d"), enc("e")]);
      await until(() => seen.length === 5);
      await sleep(100);
      expect(seen).toEqual(["a", "b", "c", "d", "e"]);
      expect(deliveries).toEqual([1, 1, 1, 1, 1]);
      await until(() => true);
      expect(await stream.lag("g", 0)).toBe(0);
    });

    it("keeps partitions apart and refuses a partition out of range", async () => {
      const { stream } = await open();
      await stream.publish(0, [enc("zero")]);
      await stream.publish(1, [enc("one")]);
      const seen: string[] = [];
      consume(stream, "g", 1, async (e) => void seen.push(dec(e.data)));
      await until(() => seen.length === 1);
      await sleep(100);
      expect(seen).toEqual(["one"]);
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
      await until(() => seen.length === 5, 5 * backend.redeliveryMs + 5000);
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
      await until(() => seen.length === n, 20_000);
      await sleep(200);
      expect(maxInFlight).toBe(1);
      expect(seen).toEqual(Array.from({ length: n }, (_, i) => i));
    });

    it("hands the entry of a consumer that died to another, before later entries", async () => {
      const { stream } = await open();
      await stream.publish(0, [enc("a"), enc("b"), enc("c")]);
      const first: string[] = [];
      const dying = consume(stream, "g", 0, async (e) => {
        first.push(dec(e.data));
        if (dec(e.data) === "b") await new Promise(() => {}); // never finishes: the process "dies" here
      });
      await until(() => first.includes("b"));
      dying.stop();
      const second: string[] = [];
      const deliveries: number[] = [];
      consume(stream, "g", 0, async (e) => {
        second.push(dec(e.data));
        deliveries.push(e.deliveries);
      });
      await until(() => second.length === 2, 5 * backend.redeliveryMs + 5000);
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
      await until(() => one.length === 2 && two.length === 2);
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
      await until(() => seen.length === 2);
      c.stop();
      await c.done;
      await until(() => true);
      expect(await stream.lag("lagging", 0)).toBe(2);
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
      await until(() => seen.length === 2);
      c.stop();
      await c.done;
      await q.stream.close();
      const again = await q.reopen();
      closers.push(() => again.close());
      const after: string[] = [];
      consume(again, "g", 0, async (e) => void after.push(dec(e.data)));
      await until(() => after.length === 2, 5 * backend.redeliveryMs + 5000);
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
      await until(() => got.a?.length === 50 && got.b?.length === 51);
      expect(got.a).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
      expect(got.b?.at(-1)).toBe("only bob");
    });

    it("does not keep messages for later subscribers, nor deliver after unsubscribe", async () => {
      const live = await open();
      const s = userSubject("carol");
      live.publish([s], enc("before"));
      await live.flush();
      await sleep(50);
      const got: string[] = [];
      const off = await live.subscribe(s, (d) => void got.push(dec(d)));
      live.publish([s], enc("during"));
      await live.flush();
      await until(() => got.length === 1);
      await off();
      live.publish([s], enc("after"));
      await live.flush();
      await sleep(100);
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
      await sleep(100);
      expect(got).toEqual([]);
    });
  });
}
