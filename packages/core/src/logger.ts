import { type Logger, pino } from "pino";

export type { Logger };

/** JSON logs to stdout; each part of the system logs through a child with its component name. */
export function createLogger(level: string, pretty = false): Logger {
  return pino({
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(pretty ? { transport: { target: "pino-pretty", options: { ignore: "pid,hostname" } } } : {}),
  });
}
