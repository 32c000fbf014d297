import { fileURLToPath } from "node:url";
import { AdminService, ChatService } from "@service-chat/api";
import {
  type Authenticator,
  type ConnectionRegistry,
  createDevSigner,
  createMetrics,
  type Database,
  type DevSigner,
  type EventStream,
  type LiveBus,
  type Logger,
  MemoryRegistry,
  type Metrics,
  migrate,
  oidcAuthenticator,
  openDatabase,
  openQueues,
  pendingMigrations,
  type Service,
} from "@service-chat/core";
import type { Config } from "./config.js";
import type { Schema } from "./db/schema.js";
import { AdminService as Admin } from "./delivery/admin-service.js";
import { FanoutWorker } from "./delivery/fanout.js";
import { MembershipCache } from "./delivery/membership.js";
import { PipelineMetrics } from "./delivery/metrics.js";
import { OutboxRelay } from "./delivery/outbox-relay.js";
import { PushNotifier } from "./delivery/push.js";
import { SyncService } from "./delivery/sync-service.js";
import { EventService } from "./events/event-service.js";
import { RoomService } from "./rooms/room-service.js";
import { authInterceptor } from "./server/auth.js";
import { adminHandlers, chatHandlers } from "./server/chat-handlers.js";
import { errorInterceptor } from "./server/errors.js";
import { plainRoutes } from "./server/http-routes.js";
import { RpcServer } from "./server/rpc-server.js";
import { SubscriptionService } from "./subscriptions/subscription-service.js";

export const MIGRATIONS = fileURLToPath(new URL("./db/migrations", import.meta.url));

export interface App {
  /** What runs, in start order: the pipeline first, the RPC server last (so it stops first). */
  services: Service[];
  server: RpcServer;
  database: Database<Schema>;
  stream: EventStream;
  live: LiveBus;
  registry: ConnectionRegistry;
  metrics: Metrics;
  /** Present when tokens come from the development signer. */
  devSigner?: DevSigner;
  /** Closes what the services do not own (database, queues, metrics). */
  close(): Promise<void>;
}

/** The composition root: config → database → queues → services → pipeline and server. */
export async function createApp(config: Config, logger: Logger): Promise<App> {
  const database = await openDatabase<Schema>(config.DB_URI, { poolSize: config.DB_POOL_SIZE });
  const applied = await migrate(database.db, MIGRATIONS);
  if (applied.length > 0) logger.info({ applied }, "migrations applied");
  const { stream, live } = await openQueues(config.QUEUE_USER_EVENT_DELIVERY_URI, {
    name: config.QUEUE_USER_EVENT_DELIVERY_NAME,
    partitions: config.QUEUE_PARTITIONS,
    redeliveryMs: config.QUEUE_REDELIVERY_MS,
  });
  const metrics = createMetrics("chat-default");
  const pipelineMetrics = new PipelineMetrics(metrics.meter);

  let devSigner: DevSigner | undefined;
  let auth: Authenticator;
  if (config.OAUTH2_ISSUER) {
    auth = oidcAuthenticator(config.OAUTH2_ISSUER, config.OAUTH2_JWT_VERIFY_AUDIENCE as string);
  } else {
    devSigner = await createDevSigner();
    auth = devSigner;
    logger.warn("no OAUTH2_ISSUER: using the development token signer (POST /dev/token)");
  }

  const registry = new MemoryRegistry();
  const members = new MembershipCache(database.db);
  const push =
    config.PUSH_WEBHOOK_URL && config.SERVICES.includes("fanout")
      ? new PushNotifier({
          url: config.PUSH_WEBHOOK_URL,
          secret: config.PUSH_WEBHOOK_SECRET as string,
          registry,
          db: database.db,
          logger: logger.child({ component: "push" }),
          metrics: pipelineMetrics,
          maxAttempts: config.PUSH_MAX_ATTEMPTS,
          baseDelayMs: config.PUSH_RETRY_BASE_MS,
        })
      : undefined;
  const admin = new Admin(database.db, new Set(config.ADMIN_PROFILE_IDS), push);
  const services = {
    rooms: new RoomService(database.db),
    subscriptions: new SubscriptionService(database.db),
    events: new EventService(database.db),
    sync: new SyncService(database.db, live, members, config.SYNC_MAX_BACKLOG),
  };
  const server = new RpcServer({
    host: config.BIND_HOST,
    httpPort: config.HTTP_PORT,
    grpcPort: config.GRPC_PORT,
    routes: (router) => {
      router.service(ChatService, chatHandlers(services));
      router.service(AdminService, adminHandlers(admin));
    },
    interceptors: [errorInterceptor(logger.child({ component: "rpc" })), authInterceptor(auth)],
    fallback: plainRoutes({
      logger,
      metrics,
      ...(devSigner ? { devSigner } : {}),
      async ready() {
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

  const run: Service[] = [];
  if (config.SERVICES.includes("relay")) {
    run.push(
      new OutboxRelay({
        database,
        stream,
        logger: logger.child({ component: "outbox-relay" }),
        metrics: pipelineMetrics,
        retentionMs: config.OUTBOX_RETENTION_SEC * 1000,
      }),
    );
  }
  if (config.SERVICES.includes("fanout")) {
    if (push) run.push(push);
    run.push(
      new FanoutWorker({
        stream,
        live,
        members,
        logger: logger.child({ component: "fanout" }),
        metrics: pipelineMetrics,
        ...(push ? { onDelivered: (event, recipients) => push.notify(event, recipients) } : {}),
      }),
    );
  }
  if (config.SERVICES.includes("api")) run.push(server);

  return {
    services: run,
    server,
    database,
    stream,
    live,
    registry,
    metrics,
    ...(devSigner ? { devSigner } : {}),
    async close() {
      await Promise.allSettled([stream.close(), live.close(), metrics.shutdown()]);
      await database.close();
    },
  };
}
