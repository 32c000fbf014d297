import { type DestinationStream, type Logger, pino } from "pino";
import { requestContext } from "./request-context.js";

export type { Logger };

/**
 * JSON logs to stdout; each part of the system logs through a child with its component name.
 * A line written while serving a request carries its `request_id` (and the device connection's
 * `connection_id` in a stream session), read from the request context.
 */
export function createLogger(level: string, pretty = false, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin() {
      const c = requestContext();
      if (!c) return {};
      return c.connectionId ? { request_id: c.requestId, connection_id: c.connectionId } : { request_id: c.requestId };
    },
    ...(pretty ? { transport: { target: "pino-pretty", options: { ignore: "pid,hostname" } } } : {}),
  };
  return destination ? pino(options, destination) : pino(options);
}
