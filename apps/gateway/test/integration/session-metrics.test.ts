import { groupRoom, sendOk, startTestApp, type TestApp, text, until, wsDevice } from "@service-chat/testing";
import { afterAll, beforeAll, expect, it } from "vitest";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

/** The value of the series `name{labels…}` on /metrics (0 when absent). */
async function value(name: string, labels: Record<string, string> = {}): Promise<number> {
  const body = await (await fetch(`${t.httpUrl}/metrics`)).text();
  let total = 0;
  for (const line of body.split("\n")) {
    const m = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const l = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => l[k] === v)) total += Number(m[3]);
  }
  return total;
}

it("counts frames by kind, replays and disconnects by code", async () => {
  const roomId = await groupRoom(t, "sm-alice", "sm-bob");
  await sendOk(t.as("sm-alice"), text(roomId, "missed while away"));
  const before = {
    hello: await value("chat_gateway_frames_received_total", { kind: "hello" }),
    welcome: await value("chat_gateway_frames_sent_total", { kind: "welcome" }),
    events: await value("chat_gateway_frames_sent_total", { kind: "event" }),
    closed: await value("chat_gateway_disconnects_total", { code: "0" }),
    replays: await value("chat_gateway_replay_events_count"),
    replayed: await value("chat_gateway_replay_events_sum"),
  };
  const token = await t.signer.sign({ sub: "sm-bob", device_id: "phone" });
  const bob = await wsDevice(t.httpUrl, { case: "hello", value: { token } });
  await bob.waitFor((f) => f.frame.case === "synced");
  await sendOk(t.as("sm-alice"), text(roomId, "live"));
  await bob.waitFor(
    (f) =>
      f.frame.case === "event" && f.frame.value.content.case === "text" && f.frame.value.content.value.body === "live",
  );
  bob.close();
  await bob.closed;
  await until(
    "the device's disconnect to be counted",
    async () => (await value("chat_gateway_disconnects_total", { code: "0" })) === before.closed + 1,
  );
  expect(await value("chat_gateway_frames_received_total", { kind: "hello" })).toBe(before.hello + 1);
  expect(await value("chat_gateway_frames_sent_total", { kind: "welcome" })).toBe(before.welcome + 1);
  // The room's creation and the missed message were replayed, the live one came after.
  expect(await value("chat_gateway_replay_events_count")).toBe(before.replays + 1);
  expect(await value("chat_gateway_replay_events_sum")).toBe(before.replayed + 2);
  expect(await value("chat_gateway_frames_sent_total", { kind: "event" })).toBe(before.events + 3);
  expect(await value("chat_gateway_send_queue_bytes")).toBe(0);
});
