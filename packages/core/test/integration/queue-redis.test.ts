import { until } from "@service-chat/testing/until";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { openQueues } from "../../src/queue/open.js";
import { queueContract } from "../queue-contract.js";

const uri = process.env.TEST_REDIS_URI ?? "redis://127.0.0.1:6379";
const redeliveryMs = 1000;
const names: string[] = [];
const freshName = () => {
  const name = `test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  names.push(name);
  return name;
};

queueContract("redis://", {
  redeliveryMs,
  open: async () => {
    const name = freshName();
    const options = { name, partitions: 4, redeliveryMs };
    const q = await openQueues(uri, options);
    return {
      ...q,
      reopen: async () => {
        const again = await openQueues(uri, options);
        await again.live.close();
        return again.stream;
      },
      another: async () => {
        const again = await openQueues(uri, options);
        await again.stream.close();
        return again.live;
      },
    };
  },
});

describe("redis:// specifics", () => {
  it("takes a path that is not a database number as a namespace for its keys (redis://redis:6379/delivery)", async () => {
    const name = freshName();
    const q = await openQueues(`${uri}/delivery`, { name, partitions: 1, redeliveryMs });
    await q.stream.publish(0, [new Uint8Array([7])]);
    const redis = new Redis(uri);
    expect(await redis.xlen(`delivery:${name}:events:0`)).toBe(1);
    await redis.del(`delivery:${name}:events:0`);
    await redis.quit();
    await q.stream.close();
    await q.live.close();
  });

  it("keeps bytes as they are, on the stream and on live subjects", async () => {
    const q = await openQueues(uri, { name: freshName(), partitions: 1, redeliveryMs });
    const bytes = new Uint8Array([0, 255, 13, 10, 0, 128, 36]);
    const live: Uint8Array[] = [];
    await q.live.subscribe("s", (d) => void live.push(d));
    q.live.publish(["s"], bytes);
    await q.stream.publish(0, [bytes, bytes.subarray(2, 4)]);
    const seen: Uint8Array[] = [];
    const c = new AbortController();
    const done = q.stream.consume("g", 0, async (e) => void seen.push(e.data), c.signal);
    await until("the entries and the live message", () => seen.length === 2 && live.length === 1);
    c.abort();
    await done;
    await Promise.all([q.stream.close(), q.live.close()]);
    expect(seen.map((b) => [...b])).toEqual([[...bytes], [13, 10]]);
    expect([...(live[0] as Uint8Array)]).toEqual([...bytes]);
  });

  it("keeps order when the reading connection is killed under it", async () => {
    const name = freshName();
    const named = new URL(uri);
    named.searchParams.set("connectionName", name);
    const q = await openQueues(named.toString(), { name, partitions: 1, redeliveryMs });
    const admin = new Redis(uri);
    const n = 200;
    const seen: number[] = [];
    const c = new AbortController();
    const done = q.stream.consume(
      "g",
      0,
      async (e) => void seen.push(Number(new TextDecoder().decode(e.data))),
      c.signal,
    );
    const reading = async () =>
      ((await admin.client("LIST")) as string)
        .split("\n")
        .find((l) => l.includes(`name=${name} `) && l.includes("cmd=xreadgroup"));
    let kills = 0;
    for (let i = 0; i < n; i += 10) {
      // Each time: the reader waits for entries, gets some, and its connection is killed meanwhile.
      const line = await until("the reading connection (back) in XREADGROUP", reading);
      await q.stream.publish(
        0,
        Array.from({ length: 10 }, (_, j) => new TextEncoder().encode(String(i + j))),
      );
      kills += Number(await admin.client("KILL", "ID", /id=(\d+)/.exec(line)?.[1] ?? "0").catch(() => 0));
    }
    await until("every entry", () => new Set(seen).size === n);
    c.abort();
    await done;
    await Promise.all([q.stream.close(), q.live.close(), admin.quit()]);
    expect(kills).toBeGreaterThan(0);
    // An entry whose reply was lost comes again (deliveries 2), before any later one.
    expect(seen.filter((v, i) => seen[i - 1] !== v)).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it("counts lag when entries were deleted inside the unread range", async () => {
    const name = freshName();
    const q = await openQueues(uri, { name, partitions: 1, redeliveryMs });
    const admin = new Redis(uri);
    await q.stream.publish(
      0,
      ["a", "b", "c", "d"].map((s) => new TextEncoder().encode(s)),
    );
    const seen: string[] = [];
    const c = new AbortController();
    const done = q.stream.consume("g", 0, async (e) => void seen.push(new TextDecoder().decode(e.data)), c.signal);
    await until("a to d", () => seen.length === 4);
    c.abort();
    await done;
    await q.stream.publish(
      0,
      ["e", "f", "g"].map((s) => new TextEncoder().encode(s)),
    );
    const ids = (await admin.xrange(`${name}:events:0`, "-", "+")).map(([id]) => id);
    await admin.xdel(`${name}:events:0`, ids[5] as string); // f: lag is now nil in XINFO GROUPS
    expect(await q.stream.lag("g", 0)).toBe(2);
    await Promise.all([q.stream.close(), q.live.close(), admin.quit()]);
  });
});

afterAll(async () => {
  const redis = new Redis(uri);
  try {
    for (const name of names.splice(0)) {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${name}:*`, "COUNT", 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== "0");
    }
  } finally {
    await redis.quit();
  }
});
