import { Code } from "@connectrpc/connect";
import type { Direction } from "@service-chat/api";
import { failsWith, groupRoom, sendOk, startTestApp, type TestApp, text } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RPC_DURATION_BUCKETS } from "../../src/server/rpc-metrics.js";

const METRIC = "chat_rpc_server_duration_seconds";
const CHAT = "chat.v1.ChatService";

let t: TestApp;
let roomId: string;
/** When this file's app started (performance.now()): every call it measured came after. */
let startedAt: number;

beforeAll(async () => {
  startedAt = performance.now();
  t = await startTestApp();
  roomId = await groupRoom(t, "rpcm-alice");
});
afterAll(() => t.stop());

const scrape = async () => (await fetch(`${t.httpUrl}/metrics`)).text();

/** The series of `name` whose labels include `labels`, each with its labels and value. */
function series(body: string, name: string, labels: Record<string, string>) {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of body.split("\n")) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const l = Object.fromEntries([...(m[2] as string).matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => l[k] === v)) out.push({ labels: l, value: Number(m[3]) });
  }
  return out;
}

const count = (body: string, service: string, method: string, code: string) =>
  series(body, `${METRIC}_count`, { rpc_service: service, rpc_method: method, rpc_code: code }).reduce(
    (a, s) => a + s.value,
    0,
  );

describe("chat_rpc_server_duration_seconds", () => {
  it("counts unary calls by method and code, over Connect, gRPC and gRPC-Web", async () => {
    const before = await scrape();
    await sendOk(t.as("rpcm-alice"), text(roomId, "over Connect JSON"));
    await sendOk(t.as("rpcm-alice", "grpc"), text(roomId, "over gRPC"));
    await sendOk(t.as("rpcm-alice", "grpc-web"), text(roomId, "over gRPC-Web"));
    await failsWith(
      t.as("rpcm-alice").getHistory({ roomId, direction: 99 as Direction }),
      Code.InvalidArgument,
      "direction",
    );
    await failsWith(t.withToken(undefined).sendEvent({ event: [text(roomId, "no token")] }), Code.Unauthenticated);
    await failsWith(t.adminAs("rpcm-alice").listPushDeadLetters({}), Code.PermissionDenied);
    const after = await scrape();

    const delta = (service: string, method: string, code: string) =>
      count(after, service, method, code) - count(before, service, method, code);
    expect(delta(CHAT, "SendEvent", "ok")).toBe(3);
    expect(delta(CHAT, "SendEvent", "unauthenticated")).toBe(1);
    expect(delta(CHAT, "GetHistory", "invalid_argument")).toBe(1);
    expect(delta(CHAT, "GetHistory", "ok")).toBe(0);
    expect(delta("chat.v1.AdminService", "ListPushDeadLetters", "permission_denied")).toBe(1);
    // CreateRoom ran once, in beforeAll.
    expect(count(after, CHAT, "CreateRoom", "ok")).toBe(1);
  });

  it("is a histogram with the documented buckets, cumulative up to +Inf", async () => {
    const body = await scrape();
    expect(body).toContain(`# TYPE ${METRIC} histogram`);
    const labels = { rpc_service: CHAT, rpc_method: "SendEvent", rpc_code: "ok" };
    const buckets = series(body, `${METRIC}_bucket`, labels);
    expect(buckets.map((b) => b.labels.le)).toEqual([...RPC_DURATION_BUCKETS.map(String), "+Inf"]);
    const values = buckets.map((b) => b.value);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(values.at(-1)).toBe(count(body, CHAT, "SendEvent", "ok"));
    const [sum] = series(body, `${METRIC}_sum`, labels);
    expect(sum?.value).toBeGreaterThan(0);
    // In seconds: the calls (one at a time) took no longer in all than this file has run so far,
    // however loaded the machine. Milliseconds would be a thousand times that.
    expect(sum?.value).toBeLessThanOrEqual((performance.now() - startedAt) / 1000);
  });
});
