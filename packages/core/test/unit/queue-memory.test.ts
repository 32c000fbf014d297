import { until } from "@service-chat/testing/until";
import { describe, expect, it } from "vitest";
import { MemoryBus, MemoryStream } from "../../src/queue/memory.js";
import { queueContract } from "../queue-contract.js";

queueContract("mem://", {
  redeliveryMs: 0,
  open: async () => ({ stream: new MemoryStream(4), live: new MemoryBus() }),
});

describe("mem:// stream bounds", () => {
  it("keeps only what some consumer group has not acknowledged yet", async () => {
    const stream = new MemoryStream(1);
    const c = new AbortController();
    let handled = 0;
    const consuming = stream.consume("g", 0, async () => void handled++, c.signal);
    for (let round = 0; round < 20; round++) {
      await stream.publish(
        0,
        Array.from({ length: 1000 }, (_, i) => new Uint8Array([round, i % 256])),
      );
      await until("the round to be consumed", () => handled === (round + 1) * 1000);
    }
    expect(stream.retained(0)).toBeLessThan(1024);
    expect(await stream.lag("g", 0)).toBe(0);
    // A later group starts at the oldest entry still kept, and goes on from there in order.
    const seen: number[] = [];
    const c2 = new AbortController();
    const later = stream.consume("late", 0, async (e) => void seen.push(e.data[0] as number), c2.signal);
    await stream.publish(0, [new Uint8Array([99, 0])]);
    await until("the later group to reach the newest entry", () => seen.at(-1) === 99);
    expect(seen.length).toBe(stream.retained(0));
    c.abort();
    c2.abort();
    await Promise.all([consuming, later]);
  });
});
