import { randomBytes } from "node:crypto";
import {
  type FaultProxy,
  type FreshDatabase,
  faultProxy,
  freshDatabase,
  POSTGRES_SERVER,
  type ServiceProcess,
  startService,
  until,
  wsDevice,
} from "@service-chat/testing";
import { afterAll, beforeAll, expect, it } from "vitest";

// PostgreSQL "down" for one service process, without stopping the server other runs share: the
// process reaches it through a fault proxy that refuses connections for a while.
let database: FreshDatabase;
let proxy: FaultProxy;
let service: ServiceProcess;
beforeAll(async () => {
  database = await freshDatabase("postgres");
  const server = new URL(POSTGRES_SERVER);
  proxy = await faultProxy({ host: server.hostname, port: Number(server.port || 5432) });
  service = await startService("outage", {
    DB_URI: proxy.via(database.uri),
    LOG_LEVEL: "info",
    QUEUE_USER_EVENT_DELIVERY_NAME: `outage${randomBytes(4).toString("hex")}`,
  });
});
afterAll(async () => {
  await service?.stop();
  await proxy?.close();
  await database?.drop();
});

async function call(token: string, method: string, body: unknown) {
  const res = await fetch(`${service.httpUrl}/chat.v1.ChatService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** The process's JSON log lines from `since` (an offset in its output) on. */
const logsSince = (since: number) =>
  service
    .output()
    .slice(since)
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { level: number; msg: string; component?: string });

it("answers unavailable while the database is down, closes hellos with 4009 to retry, and logs one warning per outage", async () => {
  const res = await fetch(`${service.httpUrl}/dev/token`, { method: "POST", body: JSON.stringify({ sub: "alice" }) });
  const { token } = (await res.json()) as { token: string };
  const { body: created } = await call(token, "CreateRoom", { name: "r", type: "ROOM_TYPE_GROUP" });
  const roomId = created.room.id as string;
  const mark = service.output().length;

  await proxy.down();
  const answers = [];
  for (let i = 0; i < 40; i++) {
    answers.push(
      await call(token, "SendEvent", {
        event: [{ roomId, clientId: `c${i}`, type: "ROOM_EVENT_TYPE_TEXT", text: { body: "hi" } }],
      }),
    );
    answers.push(await call(token, "SearchRooms", {}));
  }
  for (const a of answers) {
    expect(a).toMatchObject({ status: 503, body: { code: "unavailable" } });
  }
  const device = await wsDevice(service.httpUrl, { case: "hello", value: { token, deviceId: "d1" } });
  expect((await device.closed).code).toBe(4009);
  const disconnect = device.frames.at(-1)?.frame;
  expect(disconnect?.case === "disconnect" && disconnect.value.reconnect).toBe(true);

  await proxy.up();
  await until("a send to go through again", async () => {
    const a = await call(token, "SendEvent", {
      event: [{ roomId, clientId: "after", type: "ROOM_EVENT_TYPE_TEXT", text: { body: "back" } }],
    });
    return a.status === 200 && a.body.ack?.[0]?.eventId;
  });

  // The process's output reaches this test through a pipe, possibly after the answer did.
  await until("the outage's end in the log", () => logsSince(mark).some((l) => l.msg === "database available again"));
  const logs = logsSince(mark);
  const rpc = logs.filter((l) => l.component === "database");
  // One warning when the outage began, one line when it ended; no error, no stack per call.
  expect(rpc.map((l) => [l.level, l.msg])).toEqual([
    [40, "database unavailable: calls are answered 'unavailable' until it is back"],
    [30, "database available again"],
  ]);
  expect(logs.filter((l) => l.level >= 50)).toEqual([]);
  expect(logs.filter((l) => l.level === 40).length).toBeLessThanOrEqual(4);
});
