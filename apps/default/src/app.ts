import { hostname } from "node:os";
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
  DatabaseMetrics,
  type DevSigner,
  type EventStream,
  type LiveBus,
  type Logger,
  type Metrics,
  migrate,
  migrationScript,
  newId,
  OutageLog,
  oidcAuthenticator,
  openDatabase,
  openQueues,
  openRegistry,
  openTracing,
  otlpTracesUrl,
  pendingMigrations,
  type Service,
  type Tracing,
} from "@service-chat/core";
import { chatClientPort, forwardChat, Gateway, type OpenChatPort } from "@service-chat/gateway";
import { AuditStore } from "./audit/store.js";
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
import { RetentionWorker } from "./lifecycle/retention-worker.js";
import { RetentionStore, UpkeepStore } from "./lifecycle/store.js";
import { UpkeepWorker } from "./lifecycle/upkeep-worker.js";
import { ErasureRecovery } from "./privacy/erasure-recovery.js";
import { PersonService } from "./privacy/person-service.js";
import { PersonStore } from "./privacy/store.js";
import { RoomService } from "./rooms/room-service.js";
import { RoomStore } from "./rooms/store.js";
import { accessLogInterceptor } from "./server/access-log.js";
import { authInterceptor, verifyAuthorization } from "./server/auth.js";
import { adminHandlers, chatHandlers } from "./server/chat-handlers.js";
import { deadlineInterceptor } from "./server/deadline.js";
import { errorInterceptor } from "./server/errors.js";
import { localChatPort } from "./server/gateway-port.js";
import { plainRoutes } from "./server/http-routes.js";
import { apiRateLimits } from "./server/rate-limits.js";
import { check, Readiness, type ReadinessCheck, remoteReady } from "./server/readiness.js";
import { RpcServer } from "./server/rpc-server.js";
import { propagationInterceptor, tracedPort, tracingInterceptor } from "./server/tracing.js";
import { devUploads } from "./server/uploads.js";
import { SubscriptionStore } from "./subscriptions/store.js";
import { SubscriptionService } from "./subscriptions/subscription-service.js";

export const MIGRATIONS = fileURLToPath(new URL("./db/migrations", import.meta.url));
/** Run after the SQL migrations, under the same lock: the CHECK on room_events.type follows the kinds. */
export const MIGRATION_STEPS = [syncEventKinds];

export interface App {
  /**
   * What runs, in start order; they stop in reverse: readiness first (not ready, then a wait), the
   * gateway, then the server, then the pipeline.
   */
  services: Service[];
  server: RpcServer;
  /** Present when this process serves the API or runs the pipeline. */
  database?: Database<Schema>;
  stream: EventStream;
  live: LiveBus;
  registry: ConnectionRegistry;
  metrics: Metrics;
  /** Present when traces are exported (OTEL_EXPORTER_OTLP_*). */
  tracing?: Tracing;
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
  const identity = processIdentity(config);
  const metrics = createMetrics(identity.serviceName, { instanceId: identity.instanceId });
  const tracesUrl = otlpTracesUrl(config);
  const tracing = tracesUrl
    ? await openTracing({ ...identity, url: tracesUrl, sampleRatio: config.OTEL_TRACES_SAMPLER_ARG })
    : undefined;
  const dbMetrics = new DatabaseMetrics(metrics.meter);
  const database = needsDb
    ? await openDatabase<Schema>(config.DB_URI, {
        poolSize: config.DB_POOL_SIZE,
        connectTimeoutMs: config.DB_CONNECT_TIMEOUT_MS,
        preparedStatements: config.DB_PREPARED_STATEMENTS === "on",
        onQuery: dbMetrics.onQuery,
        embeddedSetup: () => migrationScript(MIGRATIONS),
      })
    : undefined;
  if (database) {
    dbMetrics.watch(database);
    const applied = await migrate(database.db, MIGRATIONS, MIGRATION_STEPS);
    if (applied.length > 0) logger.info({ applied }, "migrations applied");
  }
  const { stream, live } = await openQueues(config.QUEUE_USER_EVENT_DELIVERY_URI, {
    name: config.QUEUE_USER_EVENT_DELIVERY_NAME,
    partitions: config.QUEUE_PARTITIONS,
    redeliveryMs: config.QUEUE_REDELIVERY_MS,
    logger: logger.child({ component: "queue" }),
  });
  const registry = await openRegistry(
    config.CACHE_URI,
    `${config.QUEUE_USER_EVENT_DELIVERY_NAME}:registry`,
    logger.child({ component: "registry" }),
  );
  const pipelineMetrics = new PipelineMetrics(metrics.meter);
  const { auth, devSigner } = await authenticator(config, logger);
  // Calls refused while the database is down: one warning per outage, not one per call.
  const outage = new OutageLog(logger.child({ component: "database" }), "database");
  const interceptors = [
    deadlineInterceptor(),
    errorInterceptor(logger.child({ component: "rpc" }), outage),
    authInterceptor(auth),
    apiRateLimits(config),
  ];
  const accessLog = accessLogInterceptor(logger.child({ component: "access" }));

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
    const person = new PersonService(new PersonStore(db, outbox), {
      admins: new Set(config.ADMIN_PROFILE_IDS),
      registry,
      logger: logger.child({ component: "person-data" }),
    });
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
          ...(tracing ? { tracing } : {}),
        }),
        sync: new SyncService(delivery, live, {
          maxBacklog: config.SYNC_MAX_BACKLOG,
          pageSize: config.SYNC_PAGE_SIZE,
          readsInFlight: database.kind === "pglite" ? 1 : 2,
        }),
        presence: new PresenceService(delivery, registry, live),
      };
      sendLoad = () => services.events.sendLoad;
      localPort = localChatPort(services, logger.child({ component: "gateway-port" }), outage, tracing);
      const admin = new Admin(delivery, new AuditStore(db), new Set(config.ADMIN_PROFILE_IDS), push);
      chatRoutes = (router) => {
        router.service(ChatService, chatHandlers(services, auth));
        router.service(AdminService, adminHandlers(admin, person));
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
        ...(tracing ? { tracing } : {}),
        ...relaySettings(config),
      });
      run.push(relay);
      run.push(
        new RetentionWorker(
          new RetentionStore(db),
          retentionSettings(config),
          logger.child({ component: "retention" }),
          metrics.meter,
        ),
        new ErasureRecovery(person, config.RETENTION_INTERVAL_MS, logger.child({ component: "person-data" })),
        new UpkeepWorker(
          new UpkeepStore(db),
          { intervalMs: config.DB_UPKEEP_INTERVAL_MS, vacuum: database.kind === "pglite" },
          logger.child({ component: "table-upkeep" }),
        ),
      );
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
          ...(tracing ? { tracing } : {}),
          ...(notifier ? { onDelivered: (event, recipients) => notifier.notify(event, recipients) } : {}),
        }),
      );
    }
  }

  let gateway: Gateway | undefined;
  if (roles.has("gateway")) {
    let openPort = localPort;
    if (!openPort) {
      const chat = remoteClient(config.CHAT_SERVICE_URI, tracing);
      if (!chatRoutes) chatRoutes = (router) => router.service(ChatService, forwardChat(chat));
      openPort = tracing ? tracedPort(chatClientPort(chat), tracing) : chatClientPort(chat);
    }
    gateway = new Gateway({
      auth,
      openPort,
      live,
      registry,
      settings: config,
      logger: logger.child({ component: "gateway" }),
      meter: metrics.meter,
    });
  }

  const readiness = new Readiness(
    readinessChecks(config, { database, stream, registry, remoteChat: roles.has("gateway") && !localPort }),
    config.SHUTDOWN_UNREADY_SEC * 1000,
    logger.child({ component: "readiness" }),
    metrics.meter,
  );
  if (gateway && tracing) gateway.hub.tracing = tracing;
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
    outer: tracing ? [accessLog, tracingInterceptor(tracing)] : [accessLog],
    meter: metrics.meter,
    ...(gw ? { upgrade: (req, socket, head) => gw.upgrade(req, socket, head) } : {}),
    fallback: plainRoutes({
      logger,
      metrics,
      ...(devSigner ? { devSigner } : {}),
      ...uploadRoutes(config, devSigner ? auth : undefined),
      ready: () => readiness.report(),
    }),
    logger: logger.child({ component: "rpc-server" }),
    corsOrigins: config.CORS_ALLOWED_ORIGINS,
  });
  run.push(server);
  if (gateway) run.push(gateway);
  // Last to start, first to stop: not ready before anything drains.
  run.push(readiness);

  return {
    services: run,
    server,
    ...(database ? { database } : {}),
    stream,
    live,
    registry,
    metrics,
    ...(tracing ? { tracing } : {}),
    ...(gateway ? { gateway } : {}),
    ...(devSigner ? { devSigner } : {}),
    ...(sendLoad ? { sendLoad } : {}),
    async close() {
      await Promise.allSettled([
        stream.close(),
        live.close(),
        registry.close(),
        metrics.shutdown(),
        tracing?.shutdown(),
      ]);
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

/**
 * `service.name` and `service.instance.id` of this process, on every metric series and span:
 * OTEL_SERVICE_NAME, else `chat` for all roles in one process and `chat-<roles>` otherwise (e.g.
 * `chat-gateway`); GATEWAY_ID, else host name, process id and a random suffix.
 */
export function processIdentity(config: Config): { serviceName: string; instanceId: string } {
  const roles = [...config.SERVICES].sort();
  const serviceName = config.OTEL_SERVICE_NAME ?? (roles.length === 4 ? "chat" : `chat-${roles.join("-")}`);
  const instanceId = config.GATEWAY_ID ?? `${hostname()}-${process.pid}-${newId().slice(-6)}`;
  return { serviceName, instanceId };
}

/** What /readyz checks: each dependency of this process's roles. */
function readinessChecks(
  config: Config,
  deps: { database?: Database<Schema>; stream: EventStream; registry: ConnectionRegistry; remoteChat: boolean },
): ReadinessCheck[] {
  const checks: ReadinessCheck[] = [];
  const { database } = deps;
  if (database) {
    checks.push({
      name: "database",
      async check() {
        await database.ping().catch(() => {
          throw new Error("unreachable");
        });
        const pending = await pendingMigrations(database.db, MIGRATIONS);
        if (pending.length > 0) throw new Error(`migrations not applied: ${pending.join(", ")}`);
      },
    });
  }
  checks.push(check("queue", "unreachable", () => deps.stream.ping()));
  checks.push(check("registry", "unreachable", () => deps.registry.ping()));
  if (deps.remoteChat) {
    checks.push(check("chat_service", "not ready or unreachable", () => remoteReady(config.CHAT_SERVICE_URI)));
  }
  return checks;
}

/** The outbox relay's settings (OUTBOX_*). */
export const relaySettings = (c: Config): RelaySettings => ({
  batchSize: c.OUTBOX_RELAY_BATCH_SIZE,
  pollMs: c.OUTBOX_RELAY_POLL_MS,
  lingerMs: c.OUTBOX_RELAY_LINGER_MS,
  retentionMs: c.OUTBOX_RETENTION_SEC * 1000,
});

/** The retention worker's settings (RETENTION_*): the default policy, how often, how much per step. */
export const retentionSettings = (c: Config) => ({
  defaults: { maxAgeSec: c.RETENTION_MAX_AGE_SEC, maxEvents: c.RETENTION_MAX_EVENTS },
  intervalMs: c.RETENTION_INTERVAL_MS,
  batchSize: c.RETENTION_BATCH_SIZE,
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
function remoteClient(uri: string, tracing: Tracing | undefined): Client<typeof ChatService> {
  return createClient(
    ChatService,
    createConnectTransport({
      baseUrl: uri,
      httpVersion: "2",
      useBinaryFormat: true,
      acceptCompression: [],
      interceptors: [propagationInterceptor(tracing)],
    }),
  );
}

/** Attachments: the deployment's upload endpoint, or (development tokens, none set) the local store. */
function uploadRoutes(config: Config, devAuth: Authenticator | undefined) {
  if (config.UPLOAD_ENDPOINT) return { uploadEndpoint: config.UPLOAD_ENDPOINT };
  if (!devAuth) return {};
  return { uploadEndpoint: "/dev/uploads", devUploads: devUploads(config.DEV_UPLOADS_DIR, (t) => devAuth.verify(t)) };
}
