import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { AdminService, ChatService } from "@service-chat/api";
import { createLogger, type DevSigner, startServices } from "@service-chat/core";
import type { Kysely } from "kysely";
// A test-only package may import the app it starts: the Default Service's composition root.
import { type App, createApp } from "../../../apps/default/src/app.js";
import { loadConfig } from "../../../apps/default/src/config.js";
import type { Schema } from "../../../apps/default/src/db/schema.js";
import { freshDatabase } from "./database.js";

export type ChatClient = Client<typeof ChatService>;
export type Protocol = "connect" | "connect-binary" | "connect-h2" | "grpc" | "grpc-web";

export interface TestApp {
  app: App;
  signer: DevSigner;
  httpUrl: string;
  grpcUrl: string;
  /** A client acting as `user` (profile id), over the chosen protocol (Connect JSON by default). */
  as(user: string, protocol?: Protocol, claims?: { contact_id?: string; device_id?: string }): ChatClient;
  /** An AdminService client acting as `user`. */
  adminAs(user: string): Client<typeof AdminService>;
  /** A client sending exactly this token (or none). */
  withToken(token: string | undefined, protocol?: Protocol): ChatClient;
  /** The service's own database, for counting rows. */
  db: Kysely<Schema>;
  stop(): Promise<void>;
}

/** Tests call the API far faster than a person does: the per-caller limits are off unless a test sets them. */
const NO_API_LIMITS = {
  API_RATE_SEND_EVENTS_PER_SEC: "0",
  API_RATE_ROOMS_PER_MIN: "0",
  API_RATE_MEMBERSHIP_PER_MIN: "0",
};

/**
 * Starts the real Default Service on free ports against a fresh database: an in-memory PGlite, or
 * a new database on the PostgreSQL server that is dropped afterwards. Clients talk to it over
 * real sockets.
 */
export async function startTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const { uri, drop } = await freshDatabase();
  const config = loadConfig({
    DB_URI: uri,
    HTTP_PORT: "0",
    GRPC_PORT: "0",
    LOG_LEVEL: "silent",
    SHUTDOWN_UNREADY_SEC: "0",
    ...NO_API_LIMITS,
    ...env,
  });
  const logger = createLogger(config.LOG_LEVEL);
  const app = await createApp(config, logger);
  const running = startServices(app.services, logger);
  const ports = await app.server.ports;
  const httpUrl = `http://127.0.0.1:${ports.http}`;
  const grpcUrl = `http://127.0.0.1:${ports.grpc}`;
  const signer = app.devSigner as DevSigner;

  const transport = (token: () => Promise<string | undefined>, protocol: Protocol): Transport => {
    const auth: Interceptor = (next) => async (req) => {
      const t = await token();
      if (t !== undefined) req.header.set("authorization", `Bearer ${t}`);
      return next(req);
    };
    const options = { interceptors: [auth] };
    if (protocol === "grpc") return createGrpcTransport({ baseUrl: grpcUrl, ...options });
    if (protocol === "grpc-web") return createGrpcWebTransport({ baseUrl: httpUrl, httpVersion: "1.1", ...options });
    if (protocol === "connect-h2") return createConnectTransport({ baseUrl: grpcUrl, httpVersion: "2", ...options });
    const useBinaryFormat = protocol === "connect-binary";
    return createConnectTransport({ baseUrl: httpUrl, httpVersion: "1.1", useBinaryFormat, ...options });
  };

  return {
    app,
    signer,
    httpUrl,
    grpcUrl,
    // A gateway-only app has no database of its own.
    db: app.database?.db as Kysely<Schema>,
    as(user, protocol = "connect", claims = {}) {
      let token: Promise<string> | undefined;
      return createClient(
        ChatService,
        transport(() => (token ??= signer.sign({ sub: user, ...claims })), protocol),
      );
    },
    adminAs(user) {
      let token: Promise<string> | undefined;
      return createClient(
        AdminService,
        transport(() => (token ??= signer.sign({ sub: user })), "connect"),
      );
    },
    withToken(token, protocol = "connect") {
      return createClient(
        ChatService,
        transport(async () => token, protocol),
      );
    },
    async stop() {
      await running.stop();
      await app.close();
      await drop();
    },
  };
}
