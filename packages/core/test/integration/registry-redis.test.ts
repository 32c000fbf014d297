import { Redis } from "ioredis";
import { afterAll } from "vitest";
import { openRedisRegistry } from "../../src/registry/redis.js";
import { registryContract } from "../registry-contract.js";

const uri = process.env.TEST_REDIS_URI ?? "redis://127.0.0.1:6379";
const prefix = `test_registry_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;

registryContract("redis://", { shared: true, open: () => openRedisRegistry(uri, prefix) });

afterAll(async () => {
  const redis = new Redis(uri);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    await redis.quit();
  }
});
