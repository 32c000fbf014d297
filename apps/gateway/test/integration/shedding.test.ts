import { grpcDevice, startTestApp, type TestApp, until, wsDevice } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// A gateway process at MAX_CONNECTIONS refuses new connections with 4010 and how long to wait,
// and the devices it already holds go on undisturbed.

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ MAX_CONNECTIONS: "2", FULL_RETRY_AFTER_SEC: "3" });
});
afterAll(() => t.stop());

const hello = async (user: string) =>
  ({ case: "hello", value: { token: await t.signer.sign({ sub: user, device_id: "d" }) } }) as const;

/** A gauge or counter's value in /metrics (0 when absent). */
async function metric(line: RegExp): Promise<number> {
  const text = await (await fetch(`${t.httpUrl}/metrics`)).text();
  return Number(
    text
      .split("\n")
      .find((l) => line.test(l))
      ?.split(" ")
      .at(-1) ?? 0,
  );
}

describe("a gateway at its connection limit", () => {
  it("refuses a new connection with 4010 and retry_after_ms, keeps serving the others, and takes one again once there is room", async () => {
    const a = await wsDevice(t.httpUrl, await hello("full-a"));
    const b = await wsDevice(t.httpUrl, await hello("full-b"));
    await a.waitFor((f) => f.frame.case === "synced");
    await b.waitFor((f) => f.frame.case === "synced");
    expect(await metric(/^chat_gateway_connections[{ ]/)).toBe(2);
    expect(await metric(/^chat_gateway_connections_limit[{ ]/)).toBe(2);

    // WebSocket: the disconnect frame says how long to wait, and the close code is the same.
    const c = await wsDevice(t.httpUrl, await hello("full-c"));
    const closed = await c.closed;
    expect(closed.code).toBe(4010);
    expect(c.frames.map((f) => f.frame.case)).toEqual(["disconnect"]);
    expect(c.frames[0]?.frame.value).toMatchObject({
      code: 4010,
      reconnect: true,
      retryAfterMs: 3000,
      reason: "gateway full: retry after 3 s",
    });

    // HTTP/2: the same frame, then the stream ends.
    const token = await t.signer.sign({ sub: "full-d", device_id: "d" });
    const d = await grpcDevice(t.grpcUrl, token, { case: "hello", value: {} });
    expect((await d.closed).code).toBe(4010);
    expect(d.frames[0]?.frame.value).toMatchObject({ code: 4010, retryAfterMs: 3000 });
    expect(await metric(/^chat_gateway_refused_connections_total\{[^}]*reason="full"/)).toBe(2);

    // The devices already connected did not notice.
    a.send({ requestId: "p", frame: { case: "ping", value: {} } });
    await a.waitFor((f) => f.requestId === "p" && f.frame.case === "pong");
    expect(a.frames.some((f) => f.frame.case === "disconnect")).toBe(false);

    // Room again once one leaves.
    b.close();
    await b.closed;
    await until("the gateway to let b go", async () => (await metric(/^chat_gateway_connections[{ ]/)) === 1);
    const e = await wsDevice(t.httpUrl, await hello("full-e"));
    await e.waitFor((f) => f.frame.case === "synced");
    a.close();
    e.close();
  });
});
