import { appendFileSync } from "node:fs";
import { Redis } from "ioredis";
import { afterAll, expect, it } from "vitest";
import type { StreamEntry } from "../src/queue/ports.js";
import { openRedis } from "../src/queue/redis.js";

const uri = "redis://127.0.0.1:6379";
const names: string[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 20_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await sleep(10);
  }
}
const fresh = () => {
  const n = `tmpx_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  names.push(n);
  return n;
};
const admin = new Redis(uri);

afterAll(async () => {
  for (const n of names) {
    const keys = await admin.keys(`${n}:*`);
    if (keys.length) await admin.del(...keys);
  }
  await admin.quit();
});

it("binary round trip on stream and live", async () => {
  const name = fresh();
  const q = await openRedis(uri, { name, partitions: 2, redeliveryMs: 1000 });
  const bytes = new Uint8Array([0, 255, 13, 10, 0, 128, 36]);
  const sub: Uint8Array[] = [];
  await q.live.subscribe("s", (d) => void sub.push(d));
  q.live.publish(["s"], bytes);
  await q.live.flush();
  await q.stream.publish(1, [bytes, bytes.subarray(2, 4)]);
  const got: Uint8Array[] = [];
  const c = new AbortController();
  const done = q.stream.consume("g", 1, async (e) => void got.push(e.data), c.signal);
  await until(() => got.length === 2 && sub.length === 1);
  expect([...got[0]!]).toEqual([...bytes]);
  expect([...got[1]!]).toEqual([13, 10]);
  expect([...sub[0]!]).toEqual([...bytes]);
  c.abort();
  const t = Date.now();
  await done;
  console.log("stop took", Date.now() - t, "lease", await admin.get(`${name}:lease:g:1`));
  expect(await q.stream.lag("g", 1)).toBe(0);
  await q.stream.close();
  await q.live.close();
});

it("many instances, takeover, killed connections: order and exclusivity", async () => {
  const name = fresh();
  const n = 300;
  const opens = await Promise.all([0, 1, 2].map(() => openRedis(uri, { name, partitions: 1, redeliveryMs: 600 })));
  const seen: number[] = [];
  const log: string[] = [];
  const deliveries: number[] = [];
  let inFlight = 0,
    max = 0;
  const controllers = opens.map(() => new AbortController());
  const handler = (who: number) => async (e: StreamEntry) => {
    inFlight++;
    max = Math.max(max, inFlight);
    await sleep(Math.random() * 3);
    const v = Number(new TextDecoder().decode(e.data));
    log.push(`${Date.now() % 100000} who=${who} v=${v} d=${e.deliveries}`);
    appendFileSync("/tmp/qdbg.log", `${Date.now() % 100000} handler who=${who} v=${v} d=${e.deliveries}\n`);
    if (Math.random() < 0.05) {
      inFlight--;
      throw new Error("random failure");
    }
    seen.push(v);
    deliveries.push(e.deliveries);
    inFlight--;
  };
  const dones = opens.map((q, i) => q.stream.consume("g", 0, handler(i), controllers[i]!.signal));
  for (let i = 0; i < n; i += 10) {
    await opens[0]!.stream.publish(
      0,
      Array.from({ length: 10 }, (_, j) => new TextEncoder().encode(String(i + j))),
    );
    if (i === 100) {
      controllers[0]!.abort();
      log.push(`${Date.now() % 100000} abort 0`);
    } // clean stop of whoever
    if (i === 150 || i === 250) {
      // kill all reader connections server-side (blocked XREADGROUP)
      const list = (await admin.client("LIST")) as string;
      const blocked = list
        .split("\n")
        .filter((l) => l.includes("cmd=xreadgroup"))
        .map((l) => /id=(\d+)/.exec(l)![1]!);
      for (const id of blocked) await admin.client("KILL", "ID", id);
      log.push(`${Date.now() % 100000} killed ${blocked.length}`);
    }
    await sleep(20);
  }
  await until(() => new Set(seen).size === n, 60_000);
  await sleep(300);
  const bad = seen.findIndex((v, i) => v !== i);
  if (bad >= 0) {
    const at = log.findIndex((l) => l.includes(`v=${bad} `));
    console.log(log.slice(Math.max(0, at - 30), at + 40).join("\n"));
  }
  const firstIdx = seen.map((v, i) => [v, i] as const);
  // each value's first success in order, no duplicates expected in success list
  const collapsed = seen.filter((v, i) => i === 0 || seen[i - 1] !== v);
  expect(collapsed).toEqual(Array.from({ length: n }, (_, i) => i));
  expect(max).toBe(1);
  console.log("max deliveries", Math.max(...deliveries), firstIdx.length);
  controllers.forEach((c) => c.abort());
  await Promise.all(dones);
  for (const q of opens) {
    await q.stream.close();
    await q.live.close();
  }
});

it("lag when entries were deleted, and group missing", async () => {
  const name = fresh();
  const q = await openRedis(uri, { name, partitions: 1, redeliveryMs: 1000 });
  await q.stream.publish(
    0,
    ["a", "b", "c", "d"].map((s) => new TextEncoder().encode(s)),
  );
  expect(await q.stream.lag("nogroup", 0)).toBe(4);
  const seen: string[] = [];
  const c = new AbortController();
  const done = q.stream.consume(
    "g",
    0,
    async (e) => {
      seen.push(new TextDecoder().decode(e.data));
    },
    c.signal,
  );
  await until(() => seen.length === 4);
  c.abort();
  await done;
  await q.stream.publish(
    0,
    ["e", "f", "g"].map((s) => new TextEncoder().encode(s)),
  );
  const ids = (await admin.xrange(`${name}:events:0`, "-", "+")).map(([id]) => id);
  await admin.xdel(`${name}:events:0`, ids[5]!);
  console.log("xinfo", await admin.xinfo("GROUPS", `${name}:events:0`));
  expect(await q.stream.lag("g", 0)).toBe(2);
  await q.stream.close();
  await q.live.close();
});

it("reader connections killed repeatedly: order kept", async () => {
  const name = fresh();
  const n = 400;
  const q = await openRedis(uri, { name, partitions: 1, redeliveryMs: 600 });
  const seen: number[] = [];
  const c = new AbortController();
  const done = q.stream.consume(
    "g",
    0,
    async (e) => {
      await sleep(Math.random() * 2);
      seen.push(Number(new TextDecoder().decode(e.data)));
    },
    c.signal,
  );
  done.catch((e) => console.log("CONSUME FAILED", e));
  const watch = setInterval(
    async () =>
      console.log(
        "STATUS",
        seen.length,
        new Set(seen).size,
        seen.at(-1),
        await q.stream.lag("g", 0),
        JSON.stringify(await admin.xpending(`${name}:events:0`, "g")),
        await admin.pttl(`${name}:lease:g:0`),
        ((await admin.client("LIST")) as string)
          .split("\n")
          .filter((l) => !l.includes("cmd=client"))
          .map((l) => l.replace(/.*?(age=\S+).*?(flags=\S+).*?(cmd=\S+).*/, "$1 $2 $3"))
          .join(" | "),
      ),
    3000,
  );
  let kills = 0;
  const killer = (async () => {
    while (new Set(seen).size < n) {
      const list = (await admin.client("LIST")) as string;
      const ids = list
        .split("\n")
        .filter((l) => l.includes("cmd=xreadgroup"))
        .map((l) => /id=(\d+)/.exec(l)![1]!);
      for (const id of ids) {
        await admin.client("KILL", "ID", id).catch(() => {});
        kills++;
      }
      await sleep(20 + Math.random() * 30);
    }
  })();
  for (let i = 0; i < n; i += 5) {
    await q.stream.publish(
      0,
      Array.from({ length: 5 }, (_, j) => new TextEncoder().encode(String(i + j))),
    );
    await sleep(3);
  }
  await until(() => new Set(seen).size === n, 50_000).finally(() => clearInterval(watch));
  await killer;
  const collapsed = seen.filter((v, i) => i === 0 || seen[i - 1] !== v);
  console.log("kills", kills, "dups", seen.length - n);
  expect(collapsed).toEqual(Array.from({ length: n }, (_, i) => i));
  c.abort();
  await done;
  await q.stream.close();
  await q.live.close();
}, 90_000);
