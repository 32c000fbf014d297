import type { Logger } from "../logger.js";
import { MemoryRegistry } from "./memory.js";
import type { ConnectionRegistry } from "./ports.js";

/** Opens the registry named by `uri`: mem:// (in process) or redis://host:port[/db] under the key prefix `prefix`. */
export async function openRegistry(uri: string, prefix: string, logger?: Logger): Promise<ConnectionRegistry> {
  const scheme = uri.split("://")[0];
  switch (scheme) {
    case "mem":
      return new MemoryRegistry();
    case "redis":
      return (await import("./redis.js")).openRedisRegistry(uri, prefix, logger);
    default:
      throw new Error(`unsupported registry URI scheme: ${scheme}`);
  }
}
