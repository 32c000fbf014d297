import { fileURLToPath } from "node:url";
import {
  type Client,
  type ConnectRouter,
  createClient,
  createRouterTransport,
  type Interceptor,
} from "@connectrpc/connect";
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
  oidcAuthenticator,
  openDatabase,
  openQueues,
  openRegistry,
  pendingMigrations,
  type Service,
} from "@service-chat/core";
import { forwardChat, Gateway } from "@service-chat/gateway";
import type { Config } from "./config.js";
import type { Schema } from "./db/schema.js";
import { AdminService as Admin } from "./delivery/admin-service.js";
import { FanoutWorker } from "./delivery/fanout.js";
import { MembershipCache } from "./delivery/membership.js";
import { PipelineMetrics } from "./delivery/metrics.js";
import { OutboxRelay } from "./delivery/outbox-relay.js";
import { PresenceService } from "./delivery/presence-service.js";
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
  /** Closes what the services do not own (database, queues, metrics). */
  close(): Promise<void>;
}

/**
 * The composition root. SERVICES picks the roles of this process — api (ChatService on the
 * database), relay and fanout (the delivery pipeline), gateway (device streams) — and each role
 * gets only what it uses: config → database → queues → services → server.
 */
export async function createApp(config: Config, logger: Logger): Promise<App> {
  const roles = new Set(config.SERVICES);
  const needsDb = roles.has("api") || roles.has("relay") || roles.has("fanout");
  const database = needsDb ? await openDatabase<Schema>(config.DB_URI, { poolSize: config.DB_POOL_SIZE }) : undefined;
  if (database) {
    const applied = await migrate(database.db, MIGRATIONS);
    if (applied.length > 0) logger.info({ applied }, "migrations applied");
  }
  const { stream, live } = await openQueues(config.QUEUE_USER_EVENT_DELIVERY_URI, {
    name: config.QUEUE_USER_EVENT_DELIVERY_NAME,
    partitions: config.QUEUE_PARTITIONS,
    redeliveryMs: config.QUEUE_REDELIVERY_MS,
  });
  const registry = await openRegistry(config.CACHE_URI, `${config.QUEUE_USER_EVENT_DELIVERY_NAME}:registry`);
  const metrics = createMetrics("chat");
  const pipelineMetrics = new PipelineMetrics(metrics.meter);
  const { auth, devSigner } = await authenticator(config, logger);
  const interceptors = [errorInterceptor(logger.child({ component: "rpc" })), authInterceptor(auth)];

  const run: Service[] = [];
  let push: PushNotifier | undefined;
  let chatRoutes: ((router: ConnectRouter) => void) | undefined;
  if (database) {
    const db = database.db;
    if (config.PUSH_WEBHOOK_URL && roles.has("fanout")) {
      push = new PushNotifier({
        url: config.PUSH_WEBHOOK_URL,
        secret: config.PUSH_WEBHOOK_SECRET as string,
        registry,
        db,
        logger: logger.child({ component: "push" }),
        metrics: pipelineMetrics,
        maxAttempts: config.PUSH_MAX_ATTEMPTS,
        baseDelayMs: config.PUSH_RETRY_BASE_MS,
      });
    }
    if (roles.has("api")) {
      const services = {
        rooms: new RoomService(db),
        subscriptions: new SubscriptionService(db),
        events: new EventService(db),
        sync: new SyncService(db, live, config.SYNC_MAX_BACKLOG),
        presence: new PresenceService(db, registry, live),
      };
      const admin = new Admin(db, new Set(config.ADMIN_PROFILE_IDS), push);
      chatRoutes = (router) => {
        router.service(ChatService, chatHandlers(services));
        router.service(AdminService, adminHandlers(admin));
      };
    }
    if (roles.has("relay")) {
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
    if (roles.has("fanout")) {
      if (push) run.push(push);
      const notifier = push;
      run.push(
        new FanoutWorker({
          stream,
          live,
          members: new MembershipCache(db),
          logger: logger.child({ component: "fanout" }),
          metrics: pipelineMetrics,
          ...(notifier ? { onDelivered: (event, recipients) => notifier.notify(event, recipients) } : {}),
        }),
      );
    }
  }

  let gateway: Gateway | undefined;
  if (roles.has("gateway")) {
    const chat = chatRoutes ? inProcessClient(chatRoutes, interceptors) : remoteClient(config.CHAT_SERVICE_URI);
    if (!chatRoutes) chatRoutes = (router) => router.service(ChatService, forwardChat(chat));
    gateway = new Gateway({
      auth,
      chat,
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
    async close() {
      await Promise.allSettled([stream.close(), live.close(), registry.close(), metrics.shutdown()]);
      await database?.close();
    },
  };
}

async function authenticator(config: Config, logger: Logger): Promise<{ auth: Authenticator; devSigner?: DevSigner }> {
  if (config.OAUTH2_ISSUER) {
    const oidc = oidcAuthenticator(config.OAUTH2_ISSUER, config.OAUTH2_JWT_VERIFY_AUDIENCE as string);
    return { auth: new CachedAuthenticator(oidc) };
  }
  logger.warn("no OAUTH2_ISSUER: using the development token signer (POST /dev/token)");
  const devSigner = await createDevSigner(config.DEV_SIGNER_KEY_FILE);
  return { auth: new CachedAuthenticator(devSigner), devSigner };
}

/** ChatService in this process, through the same interceptors as a network call. */
function inProcessClient(
  routes: (router: ConnectRouter) => void,
  interceptors: Interceptor[],
): Client<typeof ChatService> {
  return createClient(ChatService, createRouterTransport(routes, { router: { interceptors } }));
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
