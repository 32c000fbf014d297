/**
 * Heap per idle device session, the gateway's own part: N sessions taken through hello (token
 * check through the token cache), welcome, an empty replay and `synced`, held by the live hub as in
 * a gateway, with a token of a real token's length each — and no socket (what `ws` and the kernel
 * hold per connection is the same for the raw `ws` baseline: scenario 4 measures both).
 *
 *   node --conditions=@service-chat/source --expose-gc --import tsx bench/session-memory.ts [N=20000]
 *
 * Prints bytes per session: (heap after GC with N sessions − heap after GC before) ÷ N.
 */
import { create } from "@bufbuild/protobuf";
import { ClientFrameSchema, SyncResponseSchema } from "@service-chat/api";
import {
  CachedAuthenticator,
  type ConnectionRegistry,
  createLogger,
  type LiveBus,
  OutageLog,
} from "@service-chat/core";
import { gatewaySettings, limitsOf } from "../apps/gateway/src/config.js";
import { LiveHub } from "../apps/gateway/src/hub.js";
import type { ChatPort } from "../apps/gateway/src/session/chat-port.js";
import { DeviceSession, type SessionDeps } from "../apps/gateway/src/session/device-session.js";
import type { Sink } from "../apps/gateway/src/session/writer.js";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");
const n = Number(process.argv[2] ?? 20_000);

const live: LiveBus = {
  publish() {},
  subscribe: async () => async () => {},
  flush: async () => {},
  close: async () => {},
};
const registry: ConnectionRegistry = {
  register: async () => 1,
  refresh: async () => {},
  remove: async () => {},
  deviceConnections: async () => [],
  online: async () => new Set(),
  lastSeen: async () => new Map(),
  ping: async () => {},
  forget: async () => {},
  close: async () => {},
};
const empty = create(SyncResponseSchema, { hasMore: false });
const port: ChatPort = {
  send: async () => [],
  ack: async () => {},
  markRead: async () => {},
  typing: async () => {},
  presence: async () => {},
  sync: async () => empty,
};
// A token is "<sub>|<padding>": 300 characters, about an ES256 JWT's length.
const auth = new CachedAuthenticator({
  verify: async (token) => ({ profileId: token.split("|")[0] as string, contactId: "", deviceId: "d" }),
});
const logger = createLogger("silent");
const hub = new LiveHub(live, "gw", logger);
const sessions = new Set<DeviceSession>();
const deps: SessionDeps = {
  auth,
  openPort: () => port,
  hub,
  registry,
  gatewayId: "gw",
  limits: limitsOf(gatewaySettings.parse({})),
  outage: new OutageLog(logger, "chat service"),
  logger,
  onEnd: (s) => sessions.delete(s),
};

class NullSink implements Sink {
  readonly open = true;
  backlogged(): boolean {
    return false;
  }
  write(): number {
    return 0;
  }
  end(): void {}
}

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    gc?.();
  }
}

await hub.start();
await settle();
const before = process.memoryUsage().heapUsed;
for (let i = 0; i < n; i++) {
  const s = new DeviceSession(deps, new NullSink());
  sessions.add(s);
  const sub = `user-${i}`;
  // Flat, as a token decoded from a frame is.
  const token = Buffer.concat([Buffer.from(`${sub}|`), Buffer.alloc(300 - sub.length - 1, "x")]).toString();
  s.receive(create(ClientFrameSchema, { frame: { case: "hello", value: { token } } }));
}
while ([...sessions].some((s) => s.state !== "live")) await new Promise((r) => setTimeout(r, 10));
await settle();
const after = process.memoryUsage().heapUsed;
console.log(
  `${n} idle sessions: ${((after - before) / n).toFixed(0)} bytes of heap each ` +
    `(token of 300 characters, its cache entry and the hub's entries included)`,
);
