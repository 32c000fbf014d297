import { fileURLToPath } from "node:url";
import { type Client, type ConnectRouter, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService, ChatService } from "@service-chat/api";
import {
  type Authenticator,
  CachedAuthenticator,
  type ConnectionRegistry,
  createDevSigner,
  createMetrics,
  type Database,
  type DevSigner,
  type EventStream,
  type LiveBus,
  type Logger,
  type Metrics,
  migrate,
  newId,
  OutageLog,
  oidcAuthenticator,
  openDatabase,
  openQueues,
  openRegistry,
  pendingMigrations,
  type Service,
} from "@service-chat/core";
import { chatClientPort, forwardChat, Gateway, type OpenChatPort } from "@service-chat/gateway";
import type { Config } from "./config.js";
import { syncEventKinds } from "./db/event-kinds.js";
import type { Schema } from "./db/schema.js";
import { AdminService as Admin } from "./delivery/admin-service.js";
import { FanoutWorker } from "./delivery/fanout.js";
import { MembershipCache } from "./delivery/membership.js";
import { PipelineMetrics } from "./delivery/metrics.js";
import { OutboxRelay, type RelaySettings } from "./delivery/outbox-relay.js";
import { PresenceService } from "./delivery/presence-service.js";
import { PushNotifier } from "./delivery/push.js";
import { DeliveryStore } from "./delivery/store.js";
import { SyncService } from "./delivery/sync-service.js";
import type { CommitterLimits } from "./events/committer.js";
import { EventService } from "./events/event-service.js";
import { SendMetrics } from "./events/metrics.js";
import { EventStore, type OutboxSink } from "./events/store.js";
import { RoomService } from "./rooms/room-service.js";
import { RoomStore } from "./rooms/store.js";
import { authInterceptor, verifyAuthorization } from "./server/auth.js";
import { adminHandlers, chatHandlers } from "./server/chat-handlers.js";
import { errorInterceptor } from "./server/errors.js";
import { localChatPort } from "./server/gateway-port.js";
import { plainRoutes } from "./server/http-routes.js";
import { processMetrics } from "./server/process-metrics.js";
import { apiRateLimits } from "./server/rate-limits.js";
import { RpcServer } from "./server/rpc-server.js";
import { SubscriptionStore } from "./subscriptions/store.js";
import { SubscriptionService } from "./subscriptions/subscription-service.js";

export const MIGRATIONS = fileURLToPath(new URL("./db/migrations", import.meta.url));
/** Run after the SQL migrations, under the same lock: the CHECK on room_events.type follows the kinds. */
export const MIGRATION_STEPS = [syncEventKinds];

export interface App {
  /** What runs, in start order; they stop in reverse (the gateway first, then the server, then the pipeline). */
  services: Service[];
  server: RpcServer;
  /** Present when this process serves the API or runs the pipeline. */
  database?: Database<Schema>;
  stream: EventStream;
  live: LiveBus;
  registry: ConnectionRegistry;
  metrics: Metrics;
  gateway?: Gateway;
  devSigner?: DevSigner;
  /** SendEvent's group committer, when this process serves the API: batches running, jobs waiting (for tests). */
  sendLoad?: () => { running: number; queued: number };
  /** Closes what the services do not own (database, queues, metrics). */
  close(): Promise<void>;
}

/**
 * The composition root. SERVICES picks the roles of this process — api (ChatService on the
 * database), relay and fanout (the delivery pipeline), gateway (device streams) — and each role
 * gets only what it uses: config → database → queues → stores → services → server.
 */
export async function createApp(config: Config, logger: Logger): Promise<App> {
  const roles = new Set(config.SERVICES);
  const needsDb = roles.has("api") || roles.has("relay") || roles.has("fanout");
  const database = needsDb ? await openDatabase<Schema>(config.DB_URI, { poolSize: config.DB_POOL_SIZE }) : undefined;
  if (database) {
    const applied = await migrate(database.db, MIGRATIONS, MIGRATION_STEPS);
    if (applied.length > 0) logger.info({ applied }, "migrations applied");
  }
  const { stream, live } = await openQueues(config.QUEUE_USER_EVENT_DELIVERY_URI, {
    name: config.QUEUE_USER_EVENT_DELIVERY_NAME,
    partitions: config.QUEUE_PARTITIONS,
    redeliveryMs: config.QUEUE_REDELIVERY_MS,
  });
  const registry = await openRegistry(config.CACHE_URI, `${config.QUEUE_USER_EVENT_DELIVERY_NAME}:registry`);
  const metrics = createMetrics("chat");
  processMetrics(metrics.meter);
  const pipelineMetrics = new PipelineMetrics(metrics.meter);
  const { auth, devSigner } = await authenticator(config, logger);
  // Calls refused while the database is down: one warning per outage, not one per call.
  const outage = new OutageLog(logger.child({ component: "database" }), "database");
  const interceptors = [
    errorInterceptor(logger.child({ component: "rpc" }), outage),
    authInterceptor(auth),
    apiRateLimits(config),
  ];

  const run: Service[] = [];
  let push: PushNotifier | undefined;
  let chatRoutes: ((router: ConnectRouter) => void) | undefined;
  /** The Default Service's services for a gateway in this process (calls them directly). */
  let localPort: OpenChatPort | undefined;
  let sendLoad: App["sendLoad"];
  if (database) {
    const db = database.db;
    const delivery = new DeliveryStore(db);
    // Events this process commits go straight to its outbox relay, when it has one (and it leads).
    let relay: OutboxRelay | undefined;
    const outbox: OutboxSink | undefined = roles.has("relay")
      ? { origin: newId(), committed: (events) => relay?.handoff(events) }
      : undefined;
    if (config.PUSH_WEBHOOK_URL && roles.has("fanout")) {
      push = new PushNotifier({
        url: config.PUSH_WEBHOOK_URL,
        secret: config.PUSH_WEBHOOK_SECRET as string,
        registry,
        store: delivery,
        logger: logger.child({ component: "push" }),
        metrics: pipelineMetrics,
        maxAttempts: config.PUSH_MAX_ATTEMPTS,
        baseDelayMs: config.PUSH_RETRY_BASE_MS,
        maxQueue: config.PUSH_QUEUE_MAX,
      });
    }
    if (roles.has("api")) {
      const services = {
        rooms: new RoomService(new RoomStore(db, outbox)),
        subscriptions: new SubscriptionService(new SubscriptionStore(db, outbox)),
        events: new EventService(new EventStore(db, outbox), {
          limits: sendLimits(config, database.kind),
          logger: logger.child({ component: "send" }),
          metrics: new SendMetrics(metrics.meter),
        }),
        sync: new SyncService(delivery, live, {
          maxBacklog: config.SYNC_MAX_BACKLOG,
          pageSize: config.SYNC_PAGE_SIZE,
        }),
        presence: new PresenceService(delivery, registry, live),
      };
      sendLoad = () => services.events.sendLoad;
      localPort = localChatPort(services, logger.child({ component: "gateway-port" }), outage);
      const admin = new Admin(delivery, new Set(config.ADMIN_PROFILE_IDS), push);
      chatRoutes = (router) => {
        router.service(ChatService, chatHandlers(services));
        router.service(AdminService, adminHandlers(admin));
      };
    }
    if (roles.has("relay")) {
      relay = new OutboxRelay({
        ...(outbox ? { origin: outbox.origin } : {}),
        database,
        store: delivery,
        stream,
        logger: logger.child({ component: "outbox-relay" }),
        metrics: pipelineMetrics,
        ...relaySettings(config),
      });
      run.push(relay);
    }
    if (roles.has("fanout")) {
      if (push) run.push(push);
      const notifier = push;
      run.push(
        new FanoutWorker({
          stream,
          live,
          members: new MembershipCache(delivery, config.FANOUT_CACHE_ROOMS),
          logger: logger.child({ component: "fanout" }),
          metrics: pipelineMetrics,
          ...(notifier ? { onDelivered: (event, recipients) => notifier.notify(event, recipients) } : {}),
        }),
      );
    }
  }

  let gateway: Gateway | undefined;
  if (roles.has("gateway")) {
    let openPort = localPort;
    if (!openPort) {
      const chat = remoteClient(config.CHAT_SERVICE_URI);
      if (!chatRoutes) chatRoutes = (router) => router.service(ChatService, forwardChat(chat));
      openPort = chatClientPort(chat);
    }
    gateway = new Gateway({
      auth,
      openPort,
      live,
      registry,
      settings: config,
      logger: logger.child({ component: "gateway" }),
    });
  }

  const routes = chatRoutes;
  const gw = gateway;
  const server = new RpcServer({
    host: config.BIND_HOST,
    httpPort: config.HTTP_PORT,
    grpcPort: config.GRPC_PORT,
    routes: (router) => {
      routes?.(router);
      gw?.routes(router);
    },
    interceptors,
    authorize: (header) => verifyAuthorization(auth, header),
    meter: metrics.meter,
    ...(gw ? { upgrade: (req, socket, head) => gw.upgrade(req, socket, head) } : {}),
    fallback: plainRoutes({
      logger,
      metrics,
      ...(devSigner ? { devSigner } : {}),
      async ready() {
        if (!database) return;
        await database.ping().catch((err: unknown) => {
          logger.warn({ err }, "database not reachable");
          throw new Error("database not reachable");
        });
        const pending = await pendingMigrations(database.db, MIGRATIONS);
        if (pending.length > 0) throw new Error(`migrations not applied: ${pending.join(", ")}`);
      },
    }),
    logger: logger.child({ component: "rpc-server" }),
  });
  run.push(server);
  if (gateway) run.push(gateway);

  return {
    services: run,
    server,
    ...(database ? { database } : {}),
    stream,
    live,
    registry,
    metrics,
    ...(gateway ? { gateway } : {}),
    ...(devSigner ? { devSigner } : {}),
    ...(sendLoad ? { sendLoad } : {}),
    async close() {
      await Promise.allSettled([stream.close(), live.close(), registry.close(), metrics.shutdown()]);
      await database?.close();
    },
  };
}

/**
 * The group committer's limits (SEND_BATCH_*). Two batches in flight by default on PostgreSQL (the
 * server works on one while the other's commit is flushed); one on the embedded database, which
 * runs one statement at a time anyway, so that a second batch would only wait there with the jobs
 * it took, while the next jobs could have joined the next batch.
 */
export const sendLimits = (c: Config, database: "postgres" | "pglite"): CommitterLimits => ({
  inFlight: c.SEND_BATCH_IN_FLIGHT ?? (database === "pglite" ? 1 : 2),
  maxJobs: c.SEND_BATCH_MAX_JOBS,
  maxWeight: c.SEND_BATCH_MAX_EVENTS,
});

/** The outbox relay's settings (OUTBOX_*). */
export const relaySettings = (c: Config): RelaySettings => ({
  batchSize: c.OUTBOX_RELAY_BATCH_SIZE,
  pollMs: c.OUTBOX_RELAY_POLL_MS,
  lingerMs: c.OUTBOX_RELAY_LINGER_MS,
  retentionMs: c.OUTBOX_RETENTION_SEC * 1000,
});

async function authenticator(config: Config, logger: Logger): Promise<{ auth: Authenticator; devSigner?: DevSigner }> {
  if (config.OAUTH2_ISSUER) {
    const oidc = oidcAuthenticator(config.OAUTH2_ISSUER, config.OAUTH2_JWT_VERIFY_AUDIENCE as string);
    return { auth: new CachedAuthenticator(oidc) };
  }
  logger.warn("no OAUTH2_ISSUER: using the development token signer (POST /dev/token)");
  const devSigner = await createDevSigner(config.DEV_SIGNER_KEY_FILE);
  return { auth: new CachedAuthenticator(devSigner), devSigner };
}

/**
 * ChatService of a Default Service elsewhere, over HTTP/2. Uncompressed: gateway and Default
 * Service sit next to each other, and gzip of every Sync page cost the Default Service more CPU
 * than anything else it did in a reconnect storm.
 */
function remoteClient(uri: string): Client<typeof ChatService> {
  return createClient(
    ChatService,
    createConnectTransport({ baseUrl: uri, httpVersion: "2", useBinaryFormat: true, acceptCompression: [] }),
  );
}
