import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

describe("configuration", () => {
  it("defaults to the embedded setup on loopback", () => {
    expect(loadConfig({})).toMatchObject({
      DB_URI: "pglite://./data",
      HTTP_PORT: 7000,
      GRPC_PORT: 7010,
      BIND_HOST: "127.0.0.1",
    });
  });

  it("lists every bad variable at once", () => {
    let err: unknown;
    try {
      loadConfig({ HTTP_PORT: "seventy", GRPC_PORT: "70000", DB_URI: "mysql://x", LOG_LEVEL: "loud" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    for (const name of ["HTTP_PORT", "GRPC_PORT", "DB_URI", "LOG_LEVEL"]) expect(message).toContain(name);
  });

  it("needs an audience with an issuer", () => {
    expect(() => loadConfig({ OAUTH2_ISSUER: "https://id.example.com" })).toThrow(/OAUTH2_JWT_VERIFY_AUDIENCE/);
  });

  it("refuses to expose the development signer beyond loopback", () => {
    expect(() => loadConfig({ BIND_HOST: "0.0.0.0" })).toThrow(/BIND_HOST/);
    expect(
      loadConfig({ BIND_HOST: "0.0.0.0", OAUTH2_ISSUER: "https://id.example.com", OAUTH2_JWT_VERIFY_AUDIENCE: "chat" })
        .BIND_HOST,
    ).toBe("0.0.0.0");
  });

  it("takes each queue backend's URI and names a bad one", () => {
    for (const uri of [
      "nats://nats:4222",
      "redis://redis:6379",
      "amqp://chat:secret@rabbitmq:5672/chat",
      "amqps://mq",
    ]) {
      expect(loadConfig({ QUEUE_USER_EVENT_DELIVERY_URI: uri }).QUEUE_USER_EVENT_DELIVERY_URI).toBe(uri);
    }
    expect(() => loadConfig({ QUEUE_USER_EVENT_DELIVERY_URI: "kafka://k:9092" })).toThrow(/amqp:\/\//);
    expect(() => loadConfig({ QUEUE_USER_EVENT_DELIVERY_URI: "amqp://" })).toThrow(/must name the RabbitMQ host/);
  });

  it("takes the values of the original Compose file as written", () => {
    const c = loadConfig({
      QUEUE_USER_EVENT_DELIVERY_URI: "redis://redis:6379/delivery",
      QUEUE_USER_EVENT_DELIVERY_NAME: "user.event.delivery",
      CHAT_SERVICE_URI: "default-service:7010",
    });
    expect(c.QUEUE_USER_EVENT_DELIVERY_URI).toBe("redis://redis:6379/delivery");
    expect(c.QUEUE_USER_EVENT_DELIVERY_NAME).toBe("user.event.delivery");
    expect(c.CHAT_SERVICE_URI).toBe("http://default-service:7010");
    expect(loadConfig({ CHAT_SERVICE_URI: "https://chat.internal" }).CHAT_SERVICE_URI).toBe("https://chat.internal");
  });

  it("names a bad queue name or Default Service address", () => {
    for (const name of ["user..event", ".chat", "chat.", "chat events", "x".repeat(65)]) {
      expect(() => loadConfig({ QUEUE_USER_EVENT_DELIVERY_NAME: name })).toThrow(/QUEUE_USER_EVENT_DELIVERY_NAME/);
    }
    for (const uri of ["grpc://default:7010", "http://", "default service:7010"]) {
      expect(() => loadConfig({ CHAT_SERVICE_URI: uri })).toThrow(/CHAT_SERVICE_URI: must be the Default Service's/);
    }
  });

  it("treats empty variables as unset", () => {
    expect(loadConfig({ HTTP_PORT: "" }).HTTP_PORT).toBe(7000);
  });
});
