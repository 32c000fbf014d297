import { checkGatewaySettings, gatewaySettings } from "@service-chat/gateway/config";
import { z } from "zod";

/**
 * The process's settings, read from the environment once at start: the Default Service's here,
 * the gateway's from its own schema (apps/gateway/src/config.ts), validated together so every bad
 * variable is reported at once. docs/configuration.md lists each with its default.
 */
const port = (fallback: number) =>
  z.coerce
    .number({ invalid_type_error: "must be a port number" })
    .int("must be a whole number")
    .min(0, "must be a port number (0-65535)")
    .max(65535, "must be a port number (0-65535)")
    .default(fallback);

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

const schema = z
  .object({
    DB_URI: z
      .string()
      .default("pglite://./data")
      .refine(
        (v) => /^(postgres|postgresql|pglite):\/\//.test(v),
        "must start with postgresql://, postgres:// or pglite://",
      ),
    DB_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
    DB_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
    DB_PREPARED_STATEMENTS: z.enum(["on", "off"], { message: "must be on or off" }).default("on"),
    HTTP_PORT: port(7000),
    GRPC_PORT: port(7010),
    BIND_HOST: z.string().min(1).default("127.0.0.1"),
    OAUTH2_ISSUER: z.string().url("must be the issuer's URL, e.g. https://auth.example.com").optional(),
    OAUTH2_JWT_VERIFY_AUDIENCE: z.string().min(1).optional(),
    QUEUE_USER_EVENT_DELIVERY_URI: z
      .string()
      .default("mem://")
      .refine(
        (v) => /^(mem|nats|redis|amqps?):\/\//.test(v),
        "must start with mem://, nats://, redis://, amqp:// or amqps://",
      )
      .refine(
        (v) => !/^amqps?:/.test(v) || (URL.canParse(v) && new URL(v).hostname !== ""),
        "must name the RabbitMQ host, e.g. amqp://user:password@rabbitmq:5672/vhost",
      ),
    QUEUE_USER_EVENT_DELIVERY_NAME: z
      .string()
      .max(64, "must be at most 64 characters")
      .regex(
        /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/,
        "must be letters, digits, '_' or '-', in parts joined by single dots (e.g. user.event.delivery)",
      )
      .default("chat"),
    QUEUE_PARTITIONS: z.coerce.number().int().min(1).max(256).default(8),
    QUEUE_REDELIVERY_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
    SYNC_MAX_BACKLOG: z.coerce.number().int().min(100).max(1_000_000).default(10_000),
    SYNC_PAGE_SIZE: z.coerce.number().int().min(1).max(1000).default(500),
    OUTBOX_RETENTION_SEC: z.coerce
      .number()
      .int()
      .min(1)
      .max(7 * 86400)
      .default(60),
    OUTBOX_RELAY_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
    OUTBOX_RELAY_POLL_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
    OUTBOX_RELAY_LINGER_MS: z.coerce.number().int().min(0).max(1000).default(5),
    SEND_BATCH_IN_FLIGHT: z.coerce.number().int().min(1).max(64).optional(),
    SEND_BATCH_MAX_JOBS: z.coerce.number().int().min(1).max(10_000).default(1000),
    SEND_BATCH_MAX_EVENTS: z.coerce.number().int().min(1).max(100_000).default(2000),
    FANOUT_CACHE_ROOMS: z.coerce.number().int().min(1).max(10_000_000).default(10_000),
    SERVICES: z
      .string()
      .default("api,relay,fanout,gateway")
      .transform((v) => v.split(",").map((s) => s.trim()))
      .refine(
        (list) => list.length > 0 && list.every((s) => ["api", "relay", "fanout", "gateway"].includes(s)),
        "must list api, relay, fanout and/or gateway",
      ),
    CACHE_URI: z
      .string()
      .default("mem://")
      .refine((v) => /^(mem|redis):\/\//.test(v), "must start with mem:// or redis://"),
    PUSH_WEBHOOK_URL: z.string().url("must be the webhook's URL").optional(),
    PUSH_WEBHOOK_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
    PUSH_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(6),
    PUSH_RETRY_BASE_MS: z.coerce.number().int().min(10).max(600_000).default(1000),
    PUSH_QUEUE_MAX: z.coerce.number().int().min(1).max(10_000_000).default(10_000),
    ADMIN_PROFILE_IDS: z
      .string()
      .default("")
      .transform((v) =>
        v
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      ),
    CHAT_SERVICE_URI: z
      .string()
      .default("http://127.0.0.1:7010")
      // host:port alone (as Compose files write it) means plaintext h2c: http://host:port.
      .transform((v) => (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(v) ? v : `http://${v}`))
      .refine(
        (v) => URL.canParse(v) && ["http:", "https:"].includes(new URL(v).protocol) && new URL(v).hostname !== "",
        "must be the Default Service's h2c address: host:port or http://host:port, e.g. http://127.0.0.1:7010",
      ),
    DEV_SIGNER_KEY_FILE: z.string().min(1).optional(),
    RETENTION_MAX_AGE_SEC: z.coerce
      .number()
      .int()
      .min(0)
      .max(100 * 365 * 86400)
      .default(0),
    RETENTION_MAX_EVENTS: z.coerce.number().int().min(0).max(1e15).default(0),
    RETENTION_INTERVAL_MS: z.coerce.number().int().min(10).max(86_400_000).default(60_000),
    DB_UPKEEP_INTERVAL_MS: z.coerce.number().int().min(10).max(3_600_000).default(2000),
    RETENTION_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(1000),
    UPLOAD_ENDPOINT: z
      .string()
      .refine((v) => v.startsWith("/") || /^https?:\/\//.test(v), "must be an http(s) URL or a path on this server")
      .optional(),
    DEV_UPLOADS_DIR: z.string().min(1).default("./data/uploads"),
    API_RATE_SEND_EVENTS_PER_SEC: z.coerce.number().int().min(0).max(1_000_000).default(100),
    API_RATE_ROOMS_PER_MIN: z.coerce.number().int().min(0).max(1_000_000).default(30),
    API_RATE_MEMBERSHIP_PER_MIN: z.coerce.number().int().min(0).max(1_000_000).default(300),
    LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    SHUTDOWN_UNREADY_SEC: z.coerce.number().min(0).max(300).default(2),
    CORS_ALLOWED_ORIGINS: z
      .string()
      .default("")
      .transform((v) =>
        v
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      )
      .refine(
        (list) => list.every((o) => o === "*" || /^https?:\/\/[^/\s]+$/.test(o)),
        "must be a comma-separated list of origins like https://chat.example.com (scheme, host, optional port; no path), or *",
      ),
    OTEL_EXPORTER_OTLP_ENDPOINT: z
      .string()
      .url("must be the OTLP/HTTP collector's URL, e.g. http://otel:4318")
      .optional(),
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z
      .string()
      .url("must be the OTLP/HTTP traces URL, e.g. http://otel:4318/v1/traces")
      .optional(),
    OTEL_TRACES_SAMPLER_ARG: z.coerce
      .number({ invalid_type_error: "must be a number between 0 and 1" })
      .min(0, "must be between 0 and 1")
      .max(1, "must be between 0 and 1")
      .default(1),
    OTEL_SERVICE_NAME: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be 1-64 letters, digits, '.', '_' or '-'")
      .optional(),
  })
  .merge(gatewaySettings)
  .superRefine((c, ctx) => {
    checkGatewaySettings(c, ctx);
    if (c.OAUTH2_ISSUER && !c.OAUTH2_JWT_VERIFY_AUDIENCE) {
      ctx.addIssue({
        code: "custom",
        path: ["OAUTH2_JWT_VERIFY_AUDIENCE"],
        message: "is required when OAUTH2_ISSUER is set (the audience tokens must carry)",
      });
    }
    if (c.PUSH_WEBHOOK_URL && !c.PUSH_WEBHOOK_SECRET) {
      ctx.addIssue({
        code: "custom",
        path: ["PUSH_WEBHOOK_SECRET"],
        message: "is required when PUSH_WEBHOOK_URL is set (the webhook checks the signature with it)",
      });
    }
    if (!c.OAUTH2_ISSUER && !LOOPBACK.has(c.BIND_HOST)) {
      ctx.addIssue({
        code: "custom",
        path: ["BIND_HOST"],
        message: "must be a loopback address while the development signer is in use; set OAUTH2_ISSUER to serve others",
      });
    }
  });

export type Config = z.infer<typeof schema>;

/** Every variable the service reads (each documented in docs/configuration.md). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(schema.innerType().shape);

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Reads the configuration from `env` (empty values count as unset); throws ConfigError listing every problem. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const result = schema.safeParse(present);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
  throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
}
