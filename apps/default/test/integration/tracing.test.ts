import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  freshDatabase,
  groupRoom,
  sendOk,
  startTestApp,
  TEST_DB,
  type TestApp,
  text,
  until,
  wsDevice,
} from "@service-chat/testing";
import { afterAll, beforeAll, expect, it } from "vitest";

interface CollectedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  attributes: Record<string, unknown>;
}

/** An OTLP/HTTP (JSON) traces receiver on loopback: every span it was sent, with its service name. */
const collector = {
  spans: [] as CollectedSpan[],
  server: http.createServer((req, res) => {
    let raw = "";
    req.on("data", (d) => (raw += d));
    req.on("end", () => {
      const body = JSON.parse(raw) as { resourceSpans: any[] };
      for (const rs of body.resourceSpans ?? []) {
        const attr = (k: string) => rs.resource?.attributes?.find((a: any) => a.key === k)?.value?.stringValue;
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            collector.spans.push({
              service: attr("service.name"),
              name: s.name,
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId ?? "",
              attributes: Object.fromEntries(
                (s.attributes ?? []).map((a: any) => [a.key, Object.values(a.value ?? {})[0]]),
              ),
            });
          }
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  }),
};

let dir: string;
let shared: Record<string, string>;
let service: TestApp;
let gateway: TestApp;
beforeAll(async () => {
  await new Promise<void>((r) => collector.server.listen(0, "127.0.0.1", () => r()));
  dir = await mkdtemp(join(tmpdir(), "chat-tracing-"));
  shared = {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.server.address() as AddressInfo).port}`,
    QUEUE_USER_EVENT_DELIVERY_URI: "nats://127.0.0.1:4222",
    QUEUE_USER_EVENT_DELIVERY_NAME: `tr${randomBytes(4).toString("hex")}`,
    CACHE_URI: "redis://127.0.0.1:6379",
    DEV_SIGNER_KEY_FILE: join(dir, "dev-key.json"),
  };
  service = await startTestApp({ ...shared, SERVICES: "api,relay,fanout" });
  gateway = await startTestApp({ ...shared, SERVICES: "gateway", CHAT_SERVICE_URI: service.grpcUrl });
});
afterAll(async () => {
  await gateway?.stop();
  await service?.stop();
  await new Promise<void>((r) => collector.server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

it("follows one message from the gateway's RPC through the Default Service, the pipeline and back to the device", async () => {
  const roomId = await groupRoom(service, "tr-alice", "tr-bob");
  const token = await gateway.signer.sign({ sub: "tr-bob", device_id: "phone" });
  const bob = await wsDevice(gateway.httpUrl, { case: "hello", value: { token } });
  await bob.waitFor((f) => f.frame.case === "welcome");
  // A first message delivered live shows the relay leads: from then on it takes committed events
  // (and their trace) as they commit, not from the table.
  const warm = await sendOk(service.as("tr-alice"), text(roomId, "warm-up"));
  await bob.waitFor((f) => f.frame.case === "event" && f.frame.value.id === warm.eventId);

  // Sent to the gateway-only process, which forwards it to the Default Service.
  const ack = await sendOk(gateway.as("tr-alice"), text(roomId, "traced"));
  await bob.waitFor((f) => f.frame.case === "event" && f.frame.value.id === ack.eventId);

  const chain = ["send.commit", "outbox.publish", "fanout", "gateway.deliver"];
  const spans = await until("the message's spans to reach the collector", async () => {
    await gateway.app.tracing?.flush();
    await service.app.tracing?.flush();
    const root = collector.spans.find(
      (s) => s.service === "chat-gateway" && s.name === "chat.v1.ChatService/SendEvent" && s.parentSpanId === "",
    );
    if (!root) return false;
    const trace = collector.spans.filter((s) => s.traceId === root.traceId);
    return chain.every((name) => trace.some((s) => s.name === name)) && trace;
  });

  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const parentOf = (s: CollectedSpan) => byId.get(s.parentSpanId);
  const one = (name: string, svc: string) => {
    const found = spans.filter((s) => s.name === name && s.service === svc);
    expect(found, `${name} in ${svc}`).toHaveLength(1);
    return found[0] as CollectedSpan;
  };
  const edge = one("chat.v1.ChatService/SendEvent", "chat-gateway");
  const rpc = one("chat.v1.ChatService/SendEvent", "chat-api-fanout-relay");
  const commit = one("send.commit", "chat-api-fanout-relay");
  const publish = one("outbox.publish", "chat-api-fanout-relay");
  const fanout = one("fanout", "chat-api-fanout-relay");
  const deliver = one("gateway.deliver", "chat-gateway");
  // The tree: gateway RPC → Default Service RPC → commit → relay publish → fan-out → gateway delivery.
  expect(parentOf(rpc)).toBe(edge);
  expect(parentOf(commit)).toBe(rpc);
  expect(parentOf(publish)).toBe(commit);
  expect(parentOf(fanout)).toBe(publish);
  expect(parentOf(deliver)).toBe(fanout);
  expect(deliver.attributes["chat.devices"]).toBe(1);
  expect(fanout.attributes["chat.deliveries"]).toBe(2);
  // Both RPC spans carry the same request id: the gateway passed it on.
  expect(edge.attributes["chat.request_id"]).toBeTruthy();
  expect(rpc.attributes["chat.request_id"]).toBe(edge.attributes["chat.request_id"]);
});

it("traces a device's send through a gateway-only process: the send frame, then the Default Service's call", async () => {
  const roomId = await groupRoom(service, "tg-alice", "tg-bob");
  const token = await gateway.signer.sign({ sub: "tg-bob", device_id: "tablet" });
  const bob = await wsDevice(gateway.httpUrl, { case: "hello", value: { token } });
  await bob.waitFor((f) => f.frame.case === "synced");
  bob.send({ requestId: "g1", frame: { case: "send", value: text(roomId, "from the tablet", { clientId: "tg-1" }) } });
  await bob.waitFor((f) => f.frame.case === "ack" && f.requestId === "g1");
  const spans = await until("the device send's spans", async () => {
    await gateway.app.tracing?.flush();
    await service.app.tracing?.flush();
    const root = collector.spans.find(
      (s) => s.name === "chat.v1.GatewayService/send" && s.attributes["chat.device_id"] === "tablet",
    );
    if (!root) return false;
    const trace = collector.spans.filter((s) => s.traceId === root.traceId);
    return trace.some((s) => s.name === "send.commit") && trace;
  });
  const root = spans.find((s) => s.name === "chat.v1.GatewayService/send");
  const rpc = spans.find((s) => s.name === "chat.v1.ChatService/SendEvent");
  expect(root?.service).toBe("chat-gateway");
  expect(rpc?.service).toBe("chat-api-fanout-relay");
  expect(rpc?.parentSpanId).toBe(root?.spanId);
  expect(spans.find((s) => s.name === "send.commit")?.parentSpanId).toBe(rpc?.spanId);
});

it("exports nothing and makes no Tracing when no OTLP endpoint is set", async () => {
  const plain = await startTestApp();
  try {
    expect(plain.app.tracing).toBeUndefined();
  } finally {
    await plain.stop();
  }
});

it("traces a message a device sends over its stream, from the send frame to the devices it reaches", async () => {
  const endpoint = `http://127.0.0.1:${(collector.server.address() as AddressInfo).port}`;
  const solo = await startTestApp({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: "chat-solo" });
  try {
    const roomId = await groupRoom(solo, "ts-alice", "ts-bob");
    const bob = await wsDevice(solo.httpUrl, {
      case: "hello",
      value: { token: await solo.signer.sign({ sub: "ts-bob", device_id: "b" }) },
    });
    const alice = await wsDevice(solo.httpUrl, {
      case: "hello",
      value: { token: await solo.signer.sign({ sub: "ts-alice", device_id: "a" }) },
    });
    await bob.waitFor((f) => f.frame.case === "synced");
    await alice.waitFor((f) => f.frame.case === "synced");
    // As above: once a message was delivered live, the relay leads and takes events as they commit.
    const warm = await sendOk(solo.as("ts-alice"), text(roomId, "warm-up"));
    await bob.waitFor((f) => f.frame.case === "event" && f.frame.value.id === warm.eventId);
    alice.send({ requestId: "s1", frame: { case: "send", value: text(roomId, "hi", { clientId: "ts-1" }) } });
    await bob.waitFor((f) => f.frame.case === "event" && f.frame.value.clientId === "ts-1");
    const trace = await until("the stream send's trace", async () => {
      await solo.app.tracing?.flush();
      const root = collector.spans.find((s) => s.service === "chat-solo" && s.name === "chat.v1.GatewayService/send");
      if (!root) return false;
      const spans = collector.spans.filter((s) => s.traceId === root.traceId);
      // The relay's span may end after fan-out's (it marks the rows published afterwards).
      return spans.length >= 5 && spans;
    });
    expect(trace.map((s) => s.name).sort()).toEqual(
      ["chat.v1.GatewayService/send", "fanout", "gateway.deliver", "outbox.publish", "send.commit"].sort(),
    );
  } finally {
    await solo.stop();
  }
});

it.runIf(TEST_DB === "postgres")(
  "continues the trace in a relay of another process, which reads the stored event from the outbox table",
  async () => {
    const db = await freshDatabase("postgres");
    const api = await startTestApp({ ...shared, DB_URI: db.uri, SERVICES: "api" });
    const relay = await startTestApp({ ...shared, DB_URI: db.uri, SERVICES: "relay" });
    try {
      const roomId = await groupRoom(api, "tr-carol", "tr-dave");
      await sendOk(api.as("tr-carol"), text(roomId, "stored by one process, published by another"));
      const [commit, publish] = await until(
        "the commit's and the other relay's spans to reach the collector",
        async () => {
          await api.app.tracing?.flush();
          await relay.app.tracing?.flush();
          // The only commit of this api-only process (no other test runs one).
          const c = collector.spans.find((s) => s.service === "chat-api" && s.name === "send.commit");
          const p =
            c &&
            collector.spans.find(
              (s) => s.service === "chat-relay" && s.name === "outbox.publish" && s.traceId === c.traceId,
            );
          return p ? [c, p] : false;
        },
      );
      expect(publish.parentSpanId).toBe(commit.spanId);
    } finally {
      await relay.stop();
      await api.stop();
      await db.drop();
    }
  },
);
