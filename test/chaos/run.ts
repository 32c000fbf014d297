/**
 * The fault suite (`npm run chaos`; docs/fault-suite.md). Starts its own NATS, Redis and a fresh
 * database on the PostgreSQL server (reached through a fault proxy, so "restarting PostgreSQL"
 * never touches the server other runs share), two Default Services and two gateways; devices in
 * several rooms; a sender with client ids and retries. Then, on each backend, each fault in turn
 * under traffic, and per fault: sent, acked, expected and made deliveries, missing, duplicated,
 * out of order, seq gaps in the database, recovery time.
 *
 *   npm run chaos -- [--backends nats,redis] [--faults default,gateway,nats,redis,postgres,fanout-stop]
 *                    [--messages 300] [--rate 40]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  type FaultProxy,
  type FreshDatabase,
  faultProxy,
  freshDatabase,
  POSTGRES_SERVER,
  type ServiceProcess,
  startService,
} from "@service-chat/testing";
import pg from "pg";
import { ownNats, ownRedis } from "./infra.js";
import { type Cluster, FAULTS, type Fault, type PhaseResult, runPhase, setUpTraffic } from "./phase.js";

const { values } = parseArgs({
  options: {
    backends: { type: "string", default: "nats,redis" },
    faults: { type: "string", default: FAULTS.join(",") },
    messages: { type: "string", default: "300" },
    rate: { type: "string", default: "40" },
  },
});
const backends = (values.backends as string).split(",");
const faults = (values.faults as string).split(",") as Fault[];
for (const f of faults) if (!FAULTS.includes(f)) throw new Error(`unknown fault ${f}; known: ${FAULTS.join(", ")}`);
const messages = Number(values.messages);
const rate = Number(values.rate);

const results: PhaseResult[] = [];
for (const backend of backends) {
  const dir = await mkdtemp(join(tmpdir(), "chat-chaos-"));
  const nats = await ownNats(join(dir, "nats"));
  const redis = await ownRedis(dir);
  const database: FreshDatabase = await freshDatabase("postgres");
  const server = new URL(POSTGRES_SERVER);
  const proxy: FaultProxy = await faultProxy({ host: server.hostname, port: Number(server.port || 5432) });
  const common = {
    QUEUE_USER_EVENT_DELIVERY_URI: backend === "nats" ? nats.uri : redis.uri,
    QUEUE_USER_EVENT_DELIVERY_NAME: `chaos${process.pid}`,
    QUEUE_REDELIVERY_MS: "2000",
    CACHE_URI: redis.uri,
    DEV_SIGNER_KEY_FILE: join(dir, "signer.jwk"),
    HEARTBEAT_INTERVAL_SEC: "1",
    CONNECTION_TIMEOUT_SEC: "5",
    SHUTDOWN_GRACE_SEC: "1",
    LOG_LEVEL: "warn",
  };
  const defaultEnv = { ...common, SERVICES: "api,relay,fanout", DB_URI: proxy.via(database.uri), DB_POOL_SIZE: "8" };
  const procs: ServiceProcess[] = [];
  const start = async (name: string, env: Record<string, string>, ports?: { http: number; grpc: number }) => {
    const p = await startService(name, env, ports);
    procs.push(p);
    return p;
  };
  const def1 = await start("default-1", defaultEnv);
  const def2 = await start("default-2", defaultEnv);
  const gatewayEnv = (upstream: ServiceProcess, id: string) => ({
    ...common,
    SERVICES: "gateway",
    CHAT_SERVICE_URI: upstream.grpcUrl,
    GATEWAY_ID: `gw-${id}`,
  });
  const gwA = await start("gateway-a", gatewayEnv(def1, "a"));
  const gwB = await start("gateway-b", gatewayEnv(def2, "b"));
  const ports = (p: ServiceProcess) => ({
    http: Number(new URL(p.httpUrl).port),
    grpc: Number(new URL(p.grpcUrl).port),
  });
  const cluster: Cluster = {
    defaults: [def1, def2],
    gateways: [gwA, gwB],
    nats: backend === "nats" ? nats : undefined,
    redis,
    proxy,
    async restart(p) {
      const env = p.name.startsWith("default")
        ? defaultEnv
        : gatewayEnv(p.name === "gateway-a" ? def1 : def2, p.name.slice(-1));
      await p.exited;
      const again = await start(p.name, env, ports(p));
      const list = p.name.startsWith("default") ? cluster.defaults : cluster.gateways;
      list[list.indexOf(p)] = again;
      return again;
    },
  };
  const admin = new pg.Client({ connectionString: database.uri });
  await admin.connect();
  try {
    const traffic = await setUpTraffic(cluster);
    for (const fault of faults) {
      if (fault === "nats" && backend !== "nats") continue;
      const result = await runPhase(cluster, traffic, { backend, fault, messages, rate, admin });
      results.push(result);
      console.error(JSON.stringify(result));
    }
    await traffic.stop();
  } finally {
    await admin.end();
    for (const p of procs) await p.stop(5_000);
    await proxy.close();
    await Promise.all([nats.stop(), redis.stop()]);
    await database.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

const head = [
  "backend",
  "fault",
  "sent",
  "acked",
  "expected",
  "delivered",
  "missing",
  "duplicated",
  "out of order",
  "seq gaps",
  "recovery s",
  "sends given up",
];
const rows = results.map((r) => [
  r.backend,
  r.fault,
  r.sent,
  r.acked,
  r.expected,
  r.delivered,
  r.missing,
  r.duplicated,
  r.outOfOrder,
  r.seqGaps,
  r.recoveryMs === undefined ? "never" : (r.recoveryMs / 1000).toFixed(1),
  Object.entries(r.gaveUp)
    .map(([code, n]) => `${n} ${code}`)
    .join(", ") || "0",
]);
console.log(`| ${head.join(" | ")} |\n| ${head.map(() => "---").join(" | ")} |`);
for (const row of rows) console.log(`| ${row.join(" | ")} |`);
const bad = results.filter(
  (r) => r.missing > 0 || r.duplicated > 0 || r.seqGaps > 0 || r.outOfOrder > 0 || r.acked < r.sent,
);
process.exit(bad.length > 0 ? 1 : 0);
