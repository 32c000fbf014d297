import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ChatService, RoomType } from "@service-chat/api";
import { type ChatClient, createChatClient, type RoomEvent } from "@service-chat/sdk";
import { type Issuer, startIssuer, until } from "@service-chat/testing";
import { parse } from "yaml";
import { envOf, execForm, REPO, stages } from "../test/dockerfile.js";
import { createDatabase, pgReady, startCaddy, startNats, startPostgres, startRedis } from "./infra.js";
import { type Host, Network } from "./netns.js";
import { NsProcess } from "./proc.js";

/**
 * The deployment rehearsal (`npm run rehearse`; deploy/test/e2e/rehearsal.test.ts): the topology of
 * docker-compose.yml started from the build output, each service a process in a network namespace
 * of its own with its own address, in the Compose file's start order, the Service Chat processes
 * configured only by the environment the Compose file (and the image's ENV) gives them. Then:
 * devices on both gateways, a message from one gateway's device reaching the other's, one gateway
 * stopped and its devices resuming on the other through the proxy, /readyz of every process.
 * Needs root (namespaces), and the machine's postgres, redis-server, nats-server and caddy.
 */

interface ComposeService {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, unknown>;
  networks?: { default?: { aliases?: string[] } | null };
}

const run = promisify(execFile);
const PATH = process.env.PATH ?? "/usr/bin:/bin";

async function composeConfig(env: Record<string, string>): Promise<Record<string, ComposeService>> {
  const { stdout } = await run("docker-compose", ["config"], { cwd: REPO, env: { PATH, ...env } });
  return (parse(stdout) as { services: Record<string, ComposeService> }).services;
}

/** Services in an order where each comes after what it depends on. */
function startOrder(services: Record<string, ComposeService>): string[] {
  const done: string[] = [];
  const visit = (name: string) => {
    if (done.includes(name)) return;
    for (const dep of Object.keys(services[name]?.depends_on ?? {})) visit(dep);
    done.push(name);
  };
  for (const name of Object.keys(services)) visit(name);
  return done;
}

const ok = async (url: string) => {
  const res = await fetch(url).catch(() => undefined);
  await res?.arrayBuffer();
  return res?.ok === true;
};

/** Established TCP connections in `host`'s namespace to local `port` from `peer`. */
function connectionsFrom(host: Host, port: number, peer: string): number {
  const out = execFileSync("ip", ["netns", "exec", host.ns, "ss", "-Htn", "state", "established"]).toString();
  return out.split("\n").filter((l) => l.includes(`${host.ip}:${port} `) && l.includes(`${peer}:`)).length;
}

export async function rehearse(say: (line: string) => void = console.log): Promise<void> {
  const network = new Network();
  const dir = mkdtempSync(join(tmpdir(), "chat-rehearsal-"));
  chmodSync(dir, 0o755); // the database server runs as postgres
  const procs = new Map<string, NsProcess>();
  const clients: ChatClient[] = [];
  let issuer: Issuer | undefined;
  try {
    const placeholder = { POSTGRES_PASSWORD: "x", OAUTH2_ISSUER: "http://placeholder" };
    const shape = await composeConfig(placeholder);
    const aliases = Object.fromEntries(
      Object.entries(shape).map(([name, s]) => [name, s.networks?.default?.aliases ?? []]),
    );
    network.create(Object.keys(shape), aliases);
    say(`network: bridge ${network.bridge} ${network.gateway}/24, ${network.hosts.size} namespaces`);

    // What an operator's environment gives docker-compose: a database password and an issuer.
    const audience = shape["gateway-1"]?.environment?.OAUTH2_JWT_VERIFY_AUDIENCE ?? "service_chat";
    issuer = await startIssuer(audience, network.gateway);
    const services = await composeConfig({
      POSTGRES_PASSWORD: randomBytes(12).toString("hex"),
      OAUTH2_ISSUER: issuer.url,
    });
    const runtime = stages().at(-1)!;
    const [, ...main] = execForm(runtime.steps.find((s) => s.keyword === "CMD"))!;
    const imageEnv = envOf(runtime);

    for (const name of startOrder(services)) {
      const s = services[name]!;
      const host = network.host(name);
      const env = s.environment ?? {};
      const image = s.image ?? "";
      let ready: () => Promise<boolean> | boolean;
      if (image.startsWith("postgres:")) {
        procs.set(name, startPostgres(host, env, join(dir, name)));
        ready = () => pgReady(host);
      } else if (image.startsWith("redis:")) {
        procs.set(name, startRedis(host, s.command ?? [], join(dir, name)));
        ready = () =>
          run("redis-cli", ["-h", host.ip, "ping"]).then(
            () => true,
            () => false,
          );
      } else if (image.startsWith("nats:")) {
        procs.set(name, startNats(host, s.command ?? [], join(dir, name)));
        ready = () => ok(`http://${host.ip}:8222/healthz?js-enabled-only=true`);
      } else if (image.startsWith("caddy:")) {
        procs.set(name, startCaddy(host, join(REPO, "deploy/compose/Caddyfile"), join(dir, name)));
        ready = () => ok(`http://${host.ip}:8080/readyz`);
      } else if (env.SERVICES !== undefined) {
        const appEnv: Record<string, string> = { PATH, ...imageEnv, ...env };
        procs.set(name, new NsProcess(name, host.ns, [process.execPath, ...main], { env: appEnv, cwd: REPO }));
        ready = () => ok(`http://${host.ip}:${appEnv.HTTP_PORT}/readyz`);
      } else {
        throw new Error(`the rehearsal does not know how to run ${name} (${image})`);
      }
      const proc = procs.get(name)!;
      await until(`${name} to be ready`, async () => {
        if (!proc.running) throw new Error(`${name} exited:\n${proc.log()}`);
        return ready();
      });
      if (image.startsWith("postgres:")) createDatabase(env, join(dir, name));
      say(`${name}: ready at ${host.ip}${env.SERVICES ? ` (SERVICES=${env.SERVICES})` : ""}`);
    }

    const device = (user: string, deviceId: string, baseUrl: string) => {
      const c = createChatClient({
        baseUrl,
        getToken: () => issuer!.sign({ sub: user, device_id: deviceId }),
        minBackoffMs: 50,
        maxBackoffMs: 500,
      });
      clients.push(c);
      return c;
    };
    const seen = (c: ChatClient) => {
      const events: RoomEvent[] = [];
      c.on("event", (e) => events.push(e));
      return events;
    };
    const texts = (events: RoomEvent[]) =>
      events.flatMap((e) => (e.content.case === "text" ? [e.content.value.body] : []));

    // A device on each gateway, directly: a message from one reaches the other.
    const [gw1, gw2, proxy] = [network.host("gateway-1"), network.host("gateway-2"), network.host("proxy")];
    const alice = device("alice", "alice-laptop", `http://${gw1.ip}:7000`);
    const bob = device("bob", "bob-phone", `http://${gw2.ip}:7000`);
    const bobSaw = seen(bob);
    await Promise.all([alice.connect(), bob.connect()]);
    const { room } = await alice.api.createRoom({
      name: "rehearsal",
      type: RoomType.GROUP,
      members: [{ profileId: "bob" }, { profileId: "carol" }],
    });
    await alice.sendText(room!.id, "from gateway-1");
    await until("bob, on gateway-2, to get alice's message from gateway-1", () =>
      texts(bobSaw).includes("from gateway-1"),
    );
    say("a message sent on gateway-1 reached a device on gateway-2");

    // Four devices through the proxy: spread over both gateways.
    const before = [connectionsFrom(gw1, 7000, proxy.ip), connectionsFrom(gw2, 7000, proxy.ip)];
    const carols = [1, 2, 3, 4].map((i) => device("carol", `carol-${i}`, `http://${proxy.ip}:8080`));
    const carolSaw = carols.map(seen);
    await Promise.all(carols.map((c) => c.connect()));
    const after = [connectionsFrom(gw1, 7000, proxy.ip), connectionsFrom(gw2, 7000, proxy.ip)];
    say(
      `devices through the proxy: ${after[0]! - before[0]!} more on gateway-1, ${after[1]! - before[1]!} on gateway-2`,
    );
    if (!(after[0]! > before[0]! && after[1]! > before[1]!)) {
      throw new Error(`the proxy did not spread devices over both gateways (${before} → ${after})`);
    }
    await bob.sendText(room!.id, "before the stop");
    await until("every carol device to get 'before the stop'", () =>
      carolSaw.every((s) => texts(s).includes("before the stop")),
    );

    // gRPC over h2c through the proxy's :8081, to a gateway, forwarded to a Default Service.
    const grpc = createClient(
      ChatService,
      createGrpcTransport({
        baseUrl: `http://${proxy.ip}:8081`,
        interceptors: [
          (next) => async (req) => {
            req.header.set("authorization", `Bearer ${await issuer!.sign({ sub: "carol" })}`);
            return next(req);
          },
        ],
      }),
    );
    const history = await grpc.getHistory({ roomId: room!.id });
    const bodies = history.events.flatMap((e) => (e.content.case === "text" ? [e.content.value.body] : []));
    if (!bodies.includes("before the stop")) throw new Error(`gRPC through the proxy's h2c port: ${bodies}`);
    say("gRPC over h2c through the proxy answers (GetHistory via a gateway)");

    // Stop gateway-1 as an orchestrator would (SIGTERM): its devices resume on gateway-2.
    const code = await procs.get("gateway-1")!.stop();
    if (code !== 0) throw new Error(`gateway-1 exited with ${code}:\n${procs.get("gateway-1")!.log()}`);
    say("gateway-1 stopped (exit 0)");
    alice.close();
    await bob.sendText(room!.id, "after the stop");
    await until("every carol device to resume through the proxy and get 'after the stop'", () =>
      carolSaw.every((s) => texts(s).includes("after the stop")),
    );
    for (const s of carolSaw) {
      const seqs = s.filter((e) => e.roomId === room!.id).map((e) => Number(e.seq));
      const expected = Array.from({ length: seqs.length }, (_, i) => (seqs[0] ?? 0) + i);
      if (seqs.join() !== expected.join()) throw new Error(`a device saw seqs ${seqs}: a gap or a repeat`);
    }
    if (connectionsFrom(gw2, 7000, proxy.ip) < 4) throw new Error("carol's devices are not all on gateway-2");
    say("its devices resumed on gateway-2: every message once, in order");

    for (const [name, proc] of procs) {
      const s = services[name]!;
      if (s.environment?.SERVICES === undefined || !proc.running) continue;
      if (!(await ok(`http://${network.host(name).ip}:7000/readyz`))) throw new Error(`${name} is not ready`);
    }
    if (!(await ok(`http://${proxy.ip}:8080/readyz`))) throw new Error("the proxy does not answer /readyz");
    say("/readyz: every running Service Chat process and the proxy answer 200");
  } finally {
    for (const c of clients) c.close();
    for (const name of [...procs.keys()].reverse()) await procs.get(name)!.stop(10_000);
    await issuer?.close();
    network.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
