import http from "node:http";
import type { AddressInfo } from "node:net";
import {
  type FreshDatabase,
  freshDatabase,
  groupRoom,
  startTestApp,
  TEST_DB,
  text,
  until,
} from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** A push provider on loopback that fails until told otherwise. */
const hook = {
  events: [] as string[],
  failing: true,
  server: http.createServer((req, res) => {
    let raw = "";
    req.on("data", (d) => (raw += d));
    req.on("end", () => {
      hook.events.push(String(JSON.parse(raw).event_id));
      res.writeHead(hook.failing ? 503 : 200).end();
    });
  }),
};

// A restart needs a database that outlives the process: the PostgreSQL server.
describe.skipIf(TEST_DB !== "postgres")("push retries across a restart", () => {
  let database: FreshDatabase;
  let env: Record<string, string>;
  beforeAll(async () => {
    await new Promise<void>((r) => hook.server.listen(0, "127.0.0.1", () => r()));
    database = await freshDatabase("postgres");
    env = {
      DB_URI: database.uri,
      PUSH_WEBHOOK_URL: `http://127.0.0.1:${(hook.server.address() as AddressInfo).port}/push`,
      PUSH_WEBHOOK_SECRET: "webhook-secret-for-tests",
      PUSH_MAX_ATTEMPTS: "5",
      PUSH_RETRY_BASE_MS: "1500",
    };
  });
  afterAll(async () => {
    await database.drop();
    await new Promise<void>((r) => hook.server.close(() => r()));
  });

  it("are kept in the database: a notification that failed before a restart is sent after it", async () => {
    const first = await startTestApp(env);
    const roomId = await groupRoom(first, "pa", "pb");
    const [ack] = (await first.as("pa").sendEvent({ event: [text(roomId, "are you there?")] })).ack;
    const eventId = ack?.eventId as string;
    await until("the first attempt to fail and its retry to be stored", async () => {
      const rows = await first.db.selectFrom("push_retries").select("event_id").execute();
      return hook.events.includes(eventId) && rows.some((r) => r.event_id === eventId);
    });
    await first.stop();

    hook.failing = false;
    hook.events.length = 0;
    const second = await startTestApp(env);
    try {
      await until("the restarted service to send the retry", () => hook.events.includes(eventId));
      await until(
        "the retry to be done with",
        async () => (await second.db.selectFrom("push_retries").selectAll().execute()).length === 0,
      );
      expect(hook.events.filter((e) => e === eventId)).toHaveLength(1);
    } finally {
      await second.stop();
    }
  });
});
