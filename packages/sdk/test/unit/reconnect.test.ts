import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ChatClient } from "../../src/client.js";
import { memoryStore } from "../../src/store.js";

/** A WebSocket that never reaches a server: the test decides when each attempt fails. */
class FailingSocket {
  static made: FailingSocket[] = [];
  binaryType = "";
  readyState = 0;
  private readonly closeListeners: ((ev: unknown) => void)[] = [];
  constructor() {
    FailingSocket.made.push(this);
  }
  addEventListener(type: string, listener: (ev: unknown) => void): void {
    if (type === "close") this.closeListeners.push(listener);
  }
  send(): void {}
  close(): void {}
  /** The connection fails, as it does while the network is down. */
  fail(): void {
    this.readyState = 3;
    for (const listener of this.closeListeners) listener({ code: 1006, reason: "" });
  }
}

const attempts = () => FailingSocket.made.length;

/** A client whose store already holds a state (not a new device: connecting asks the server nothing first). */
async function client(): Promise<ChatClient> {
  const store = memoryStore();
  await store.save({ positions: {}, outbox: [] });
  return new ChatClient({ baseUrl: "http://127.0.0.1:9", token: "t", store });
}

// The clock is faked and moves only when a test moves it; Math.random answers 1, the longest delay
// the jitter allows, so each delay below is the most the client may wait.
describe("reconnecting while the network is down", () => {
  beforeEach(() => {
    FailingSocket.made = [];
    vi.useFakeTimers();
    vi.stubGlobal("WebSocket", FailingSocket);
    vi.spyOn(Math, "random").mockReturnValue(1);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });

  it("waits longer after each failure, never more than the cap (5 s) however long the outage", async () => {
    const c = await client();
    c.connect().catch(() => {});
    await vi.advanceTimersByTimeAsync(0);
    expect(attempts()).toBe(1);
    const waited: number[] = [];
    for (let i = 0; i < 12; i++) {
      FailingSocket.made.at(-1)?.fail();
      const before = attempts();
      const failedAt = Date.now(); // the faked clock's
      while (attempts() === before) await vi.advanceTimersToNextTimerAsync();
      waited.push(Date.now() - failedAt);
    }
    expect(waited).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000, 5000, 5000, 5000]);
    c.close();
  });

  it("on reconnectNow, tries at once, and waits from the shortest delay again after that", async () => {
    const c = await client();
    c.connect().catch(() => {});
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 8; i++) {
      FailingSocket.made.at(-1)?.fail();
      await vi.advanceTimersByTimeAsync(5_000);
    }
    FailingSocket.made.at(-1)?.fail();
    expect(c.state).toBe("reconnecting");
    const before = attempts();
    c.reconnectNow();
    await vi.advanceTimersByTimeAsync(0);
    expect(attempts()).toBe(before + 1);
    FailingSocket.made.at(-1)?.fail();
    await vi.advanceTimersByTimeAsync(249);
    expect(attempts()).toBe(before + 1);
    await vi.advanceTimersByTimeAsync(1);
    expect(attempts()).toBe(before + 2);
    c.close();
  });
});
