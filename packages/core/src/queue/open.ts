import { MemoryBus, MemoryStream } from "./memory.js";
import type { EventStream, LiveBus, QueueOptions } from "./ports.js";

/**
 * Opens the stream and the live bus named by `uri`: mem://, nats://host:port, redis://host:port[/db],
 * amqp://user:password@host:port[/vhost] (or amqps://).
 */
export async function openQueues(uri: string, options: QueueOptions): Promise<{ stream: EventStream; live: LiveBus }> {
  const scheme = uri.split("://")[0];
  switch (scheme) {
    case "mem":
      return { stream: new MemoryStream(options.partitions), live: new MemoryBus() };
    case "nats": {
      const { openNats } = await import("./nats.js");
      return openNats(uri, options);
    }
    case "redis": {
      const { openRedis } = await import("./redis.js");
      return openRedis(uri, options);
    }
    case "amqp":
    case "amqps": {
      const { openAmqp } = await import("./amqp.js");
      return openAmqp(uri, options);
    }
    default:
      throw new Error(`unsupported queue URI scheme: ${scheme}`);
  }
}
