import { aborted, createLogger, type Service, sleep, startServices } from "@service-chat/core";
import { until } from "@service-chat/testing/until";
import { describe, expect, it } from "vitest";

describe("startServices", () => {
  it("stops every service when one fails, and keeps its error for the process to exit non-zero", async () => {
    const stopped: string[] = [];
    const long = (name: string) => ({
      name,
      async run(signal: AbortSignal) {
        await aborted(signal);
        stopped.push(name);
      },
    });
    const running = startServices(
      [long("relay"), { name: "fanout", run: async () => Promise.reject(new Error("stream lost")) }, long("server")],
      createLogger("silent"),
    );
    await running.done;
    expect(running.failure?.message).toBe("stream lost");
    expect(stopped).toEqual(["server", "relay"]);
  });

  it("reports no failure after an ordinary stop", async () => {
    const running = startServices([{ name: "a", run: (s: AbortSignal) => aborted(s) }], createLogger("silent"));
    await running.stop();
    expect(running.failure).toBeUndefined();
  });

  it("hurry ends a wait made on the way down, and only once stopping has begun", async () => {
    const order: string[] = [];
    let cut: (() => void) | undefined;
    // Waits "forever" once asked to stop, unless hurried: the test ends only if hurry works.
    const waiting: Service = {
      name: "waiting",
      async run(signal) {
        await aborted(signal);
        const ended = new AbortController();
        cut = () => ended.abort();
        await sleep(3_600_000, ended.signal);
        cut = undefined;
        order.push("waited");
      },
      hurry() {
        const end = cut;
        end?.();
        return end !== undefined;
      },
    };
    const after: Service = {
      name: "server",
      async run(signal) {
        await aborted(signal);
        order.push("server stopped");
      },
    };
    const running = startServices([after, waiting], createLogger("silent"));
    expect(running.hurry()).toBe(false);
    const stopped = running.stop();
    await until("the wait to be cut short", async () => running.hurry());
    await stopped;
    expect(order).toEqual(["waited", "server stopped"]);
    // Nothing is waiting any more: a later signal has nothing to cut short.
    expect(running.hurry()).toBe(false);
  });
});
