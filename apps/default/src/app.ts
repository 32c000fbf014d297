import { fileURLToPath } from "node:url";
import { ChatService } from "@service-chat/api";
import {
  type Authenticator,
  createDevSigner,
  type Database,
  type DevSigner,
  type Logger,
  migrate,
  oidcAuthenticator,
  openDatabase,
  pendingMigrations,
  type Service,
} from "@service-chat/core";
import type { Config } from "./config.js";
import type { Schema } from "./db/schema.js";
import { EventService } from "./events/event-service.js";
import { RoomService } from "./rooms/room-service.js";
import { authInterceptor } from "./server/auth.js";
import { chatHandlers } from "./server/chat-handlers.js";
import { errorInterceptor } from "./server/errors.js";
import { plainRoutes } from "./server/http-routes.js";
import { RpcServer } from "./server/rpc-server.js";
import { SubscriptionService } from "./subscriptions/subscription-service.js";

export const MIGRATIONS = fileURLToPath(new URL("./db/migrations", import.meta.url));

export interface App {
  services: Service[];
  server: RpcServer;
  database: Database<Schema>;
  /** Present when tokens come from the development signer. */
  devSigner?: DevSigner;
  /** Closes what the services do not own (the database). */
  close(): Promise<void>;
}

/** The composition root: config → database → services → server, in that order. */
export async function createApp(config: Config, logger: Logger): Promise<App> {
  const database = await openDatabase<Schema>(config.DB_URI, { poolSize: config.DB_POOL_SIZE });
  const applied = await migrate(database.db, MIGRATIONS);
  if (applied.length > 0) logger.info({ applied }, "migrations applied");

  let devSigner: DevSigner | undefined;
  let auth: Authenticator;
  if (config.OAUTH2_ISSUER) {
    auth = oidcAuthenticator(config.OAUTH2_ISSUER, config.OAUTH2_JWT_VERIFY_AUDIENCE as string);
  } else {
    devSigner = await createDevSigner();
    auth = devSigner;
    logger.warn("no OAUTH2_ISSUER: using the development token signer (POST /dev/token)");
  }

  const services = {
    rooms: new RoomService(database.db),
    subscriptions: new SubscriptionService(database.db),
    events: new EventService(database.db),
  };
  const server = new RpcServer({
    host: config.BIND_HOST,
    httpPort: config.HTTP_PORT,
    grpcPort: config.GRPC_PORT,
    routes: (router) => router.service(ChatService, chatHandlers(services)),
    interceptors: [errorInterceptor(logger.child({ component: "rpc" })), authInterceptor(auth)],
    fallback: plainRoutes({
      logger,
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
  return { services: [server], server, database, ...(devSigner ? { devSigner } : {}), close: () => database.close() };
}
