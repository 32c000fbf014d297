import type { Logger } from "./logger.js";

interface ClientEvents {
  on(event: "error", listener: (err: Error) => void): unknown;
  on(event: "ready", listener: () => void): unknown;
}

/**
 * Routes a client library's connection errors to the JSON log: one warning when `what` becomes
 * unreachable, one line when it is back, nothing per retry. Without a listener ioredis prints
 * each error as plain text on stderr.
 */
export function logClientErrors(client: ClientEvents, what: string, logger?: Logger): void {
  let down = false;
  client.on("error", (err) => {
    if (down) return;
    down = true;
    logger?.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, `${what} unreachable`);
  });
  client.on("ready", () => {
    if (!down) return;
    down = false;
    logger?.info(`${what} reachable again`);
  });
}
