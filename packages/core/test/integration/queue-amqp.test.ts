import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { until } from "@service-chat/testing/until";
import { afterAll, describe, expect, it } from "vitest";
import { deleteAmqpNames } from "../../src/queue/amqp.js";
import { openQueues } from "../../src/queue/open.js";
import { queueContract } from "../queue-contract.js";

const uri = process.env.TEST_AMQP_URI ?? "amqp://127.0.0.1:5672";
const redeliveryMs = 1000;
const groups = ["g", "one", "two", "lagging"];
const names: string[] = [];
const freshName = () => {
  const name = `test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  names.push(name);
  return name;
};
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

queueContract("amqp://", {
  redeliveryMs,
  open: async () => {
    const options = { name: freshName(), partitions: 4, redeliveryMs };
    const q = await openQueues(uri, options);
    const reopen = async () => {
      const again = await openQueues(uri, options);
      await again.live.close();
      return again.stream;
    };
    const another = async () => {
      const again = await openQueues(uri, options);
      await again.stream.close();
      return again.live;
    };
    return { ...q, reopen, another };
  },
});

const RABBITMQCTL = "/usr/sbin/rabbitmqctl";
const exec = promisify(execFile);

/** Has the broker close the connections named `connectionName`, as a network failure would; how many it closed. */
async function closeConnections(connectionName: string): Promise<number> {
  const { stdout } = await exec(RABBITMQCTL, ["-q", "list_connections", "pid", "client_properties"]);
  const pids = stdout
    .split("\n")
    .filter((line) => line.includes(`"${connectionName}"`))
    .map((line) => line.split("\t")[0] as string);
  for (const pid of pids) await exec(RABBITMQCTL, ["-q", "close_connection", pid, "closed by a test"]);
  return pids.length;
}

describe("amqp:// specifics", () => {
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
    await until("seen.length === 2 && live.length === 1", () => seen.length === 2 && live.length === 1);
    c.abort();
    await done;
    await Promise.all([q.stream.close(), q.live.close()]);
    expect(seen.map((b) => [...b])).toEqual([[...bytes], [13, 10]]);
    expect([...(live[0] as Uint8Array)]).toEqual([...bytes]);
  });

  it("says which broker it could not reach, without the password, and what is wrong with a URI", async () => {
    const options = { name: freshName(), partitions: 1, redeliveryMs };
    const refused = await openQueues("amqp://chat:s3cret@127.0.0.1:1/chat", options).catch((e: Error) => e);
    expect(String(refused)).toMatch(
      /cannot connect to RabbitMQ at amqp:\/\/chat:\*\*\*@127\.0\.0\.1:1\/chat.*ECONNREFUSED/,
    );
    expect(String(refused)).not.toContain("s3cret");
    const denied = await openQueues(uri.replace("amqp://", "amqp://nobody:wrong@"), options).catch((e: Error) => e);
    expect(String(denied)).toMatch(/cannot connect to RabbitMQ at .*ACCESS.REFUSED/);
    await expect(openQueues("amqp://", options)).rejects.toThrow(/invalid RabbitMQ URI amqp:\/\/: expected amqp:\/\//);
  });

  it("tells a group's lag in a process that does not hold the partition", async () => {
    const name = freshName();
    const holding = await openQueues(uri, { name, partitions: 1, redeliveryMs });
    const other = await openQueues(uri, { name, partitions: 1, redeliveryMs });
    await holding.stream.publish(0, ["a", "b", "c", "d"].map(enc));
    const seen: string[] = [];
    const c = new AbortController();
    const done = holding.stream.consume(
      "g",
      0,
      async (e) => {
        seen.push(dec(e.data));
        if (dec(e.data) === "c") await new Promise(() => {}); // busy with c
      },
      c.signal,
    );
    await until("seen.length === 3", () => seen.length === 3);
    expect(await other.stream.lag("g", 0)).toBe(2);
    expect(await holding.stream.lag("g", 0)).toBe(2);
    c.abort();
    await done;
    await Promise.all([holding.stream.close(), holding.live.close(), other.stream.close(), other.live.close()]);
  });

  it("goes on from the end of the stream after a clean stop, handing out nothing twice", async () => {
    const q = await openQueues(uri, { name: freshName(), partitions: 1, redeliveryMs });
    await q.stream.publish(0, [enc("a"), enc("b")]);
    const seen: string[] = [];
    const consume = () => {
      const c = new AbortController();
      const done = q.stream.consume("g", 0, async (e) => void seen.push(`${dec(e.data)}${e.deliveries}`), c.signal);
      return async () => {
        c.abort();
        await done;
      };
    };
    let stop = consume();
    await until("seen.length === 2", () => seen.length === 2);
    await stop(); // once stopped, what the handler finished is acknowledged
    expect(await q.stream.lag("g", 0)).toBe(0);
    stop = consume(); // starts where the group is: after b, where nothing is yet
    await q.stream.publish(0, [enc("c")]);
    await until("seen.length === 3", () => seen.length === 3);
    await stop();
    await Promise.all([q.stream.close(), q.live.close()]);
    expect(seen).toEqual(["a1", "b1", "c1"]);
  });

  it.skipIf(!existsSync(RABBITMQCTL))("listens again after the broker closed the live bus's connection", async () => {
    const name = freshName();
    const q = await openQueues(uri, { name, partitions: 1, redeliveryMs });
    const got: string[] = [];
    await q.live.subscribe("s", (d) => void got.push(dec(d)));
    expect(await closeConnections(`${name}-live`)).toBe(1);
    // What is published while the bus is away is lost (at most once); it binds "s" again when back.
    const end = Date.now() + 30_000;
    for (let i = 0; got.length === 0 && Date.now() < end; i++) {
      q.live.publish(["s"], enc(`after ${i}`));
      await q.live.flush().catch(() => {});
      await sleep(50);
    }
    await Promise.all([q.stream.close(), q.live.close()]);
    expect(got[0]).toMatch(/^after \d+$/);
  });

  it.skipIf(!existsSync(RABBITMQCTL))(
    "keeps order and loses nothing when the broker closes the consuming connection",
    async () => {
      const name = freshName();
      const q = await openQueues(uri, { name, partitions: 1, redeliveryMs });
      const n = 100;
      const seen: number[] = [];
      const deliveries: number[] = [];
      const c = new AbortController();
      const done = q.stream.consume(
        "g",
        0,
        async (e) => {
          seen.push(Number(dec(e.data)));
          deliveries.push(e.deliveries);
          await sleep(5);
        },
        c.signal,
      );
      let closed = 0;
      for (let i = 0; i < n; i += 10) {
        await q.stream.publish(
          0,
          Array.from({ length: 10 }, (_, j) => enc(String(i + j))),
        );
        if (i % 40 === 0) {
          await until("seen.length > i", () => seen.length > i); // the consumer is at work on this batch
          closed += await closeConnections(`${name}-stream-consume`);
        }
      }
      await until("new Set(seen).size === n", () => new Set(seen).size === n);
      c.abort();
      await done;
      await Promise.all([q.stream.close(), q.live.close()]);
      expect(closed).toBeGreaterThanOrEqual(3);
      // An entry whose handler was cut off comes again, before any later one, and says so.
      expect(seen.filter((v, i) => seen[i - 1] !== v)).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(deliveries.filter((d, i) => seen[i - 1] === seen[i] && d < 2)).toEqual([]);
    },
    60_000,
  );
});

afterAll(async () => {
  for (const name of names.splice(0)) await deleteAmqpNames(uri, name, 4, groups);
});
