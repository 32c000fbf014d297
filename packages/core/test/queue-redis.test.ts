import { Redis } from "ioredis";
import { afterAll } from "vitest";
import { openQueues } from "../src/queue/open.js";
import { queueContract } from "./queue-contract.js";

const uri = process.env.TEST_REDIS_URI ?? "redis://127.0.0.1:6379";
const redeliveryMs = 1000;
const names: string[] = [];

queueContract("redis://", {
  redeliveryMs,
  open: async () => {
    const name = `test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
    names.push(name);
    const options = { name, partitions: 4, redeliveryMs };
    const q = await openQueues(uri, options);
    return {
      ...q,
      reopen: async () => {
        const again = await openQueues(uri, options);
        await again.live.close();
        return again.stream;
      },
    };
  },
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
