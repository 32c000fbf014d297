import { aborted, createLogger, startServices } from "@service-chat/core";
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
});
