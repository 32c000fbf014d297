import type { ConnectError } from "@connectrpc/connect";

/** What `chat` exits with; scripts rely on these. */
export const EXIT = {
  ok: 0,
  /** The server answered and refused (the error code is printed). */
  refused: 1,
  /** The command line is wrong. */
  usage: 2,
  /** No answer from the server (down, wrong address, not a chat server, timed out). */
  unreachable: 3,
  /** No token, or the server does not accept it. */
  unauthenticated: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure with its exit code and a one-line message that says what to do. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
  }
}

export const usageError = (message: string, command?: string) =>
  new CliError(EXIT.usage, `${message} (see: chat ${command ? `${command} ` : ""}--help)`);

export const notAuthenticated = (why = "set CHAT_TOKEN or pass --token") =>
  new CliError(EXIT.unauthenticated, `not authenticated: ${why} (get one with: chat token alice)`);

export const unreachable = (url: string, detail?: string) =>
  new CliError(
    EXIT.unreachable,
    `cannot reach the server at ${url}${detail ? ` (${detail})` : ""}: is it running? (start it with: npm start; or set CHAT_URL / --url)`,
  );

const CODES = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

/** The API's error code (`not_found`, `permission_denied`, …) of a Connect error, or undefined for anything else. */
export function rpcCode(err: unknown): string | undefined {
  const e = err as Partial<ConnectError> | undefined;
  if (e?.name !== "ConnectError" || typeof e.code !== "number") return undefined;
  return CODES[e.code] ?? "unknown";
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "EPIPE",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_HEADERS_TIMEOUT",
]);

/** Why a request never got an answer (ECONNREFUSED, …), or undefined when the server answered. */
export function networkFailure(err: unknown): string | undefined {
  let fetchFailed = false;
  let e: unknown = err;
  for (let depth = 0; e && depth < 8; depth++) {
    const x = e as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown[] };
    if (typeof x.code === "string" && NETWORK_CODES.has(x.code)) return x.code;
    for (const inner of Array.isArray(x.errors) ? x.errors : []) {
      const found = networkFailure(inner);
      if (found) return found;
    }
    if (typeof x.message === "string" && /^(fetch failed|socket hang up)$/i.test(x.message)) fetchFailed = true;
    else if (fetchFailed && typeof x.message === "string" && !x.cause) return x.message;
    e = x.cause;
  }
  return fetchFailed ? "no answer" : undefined;
}

const HINTS: Partial<Record<string, string>> = {
  not_found: "your rooms are listed by: chat rooms list",
};

/** The server said no: its code and message, and what to do about it where the CLI knows. */
function refused(code: string, message: string): CliError {
  const hint = /join it first/.test(message) ? "join with: chat rooms join <room>" : HINTS[code];
  return new CliError(EXIT.refused, `${code}: ${message}${hint ? `; ${hint}` : ""}`);
}

/** Turns anything thrown while running a command into a CliError. */
export function toCliError(err: unknown, url: string): CliError {
  if (err instanceof CliError) return err;
  const net = networkFailure(err);
  if (net) return unreachable(url, net);
  const rpc = rpcCode(err);
  if (rpc) {
    const message = (err as ConnectError).rawMessage;
    if (rpc === "unauthenticated") {
      return notAuthenticated(`the server refused the token (${message}): set a valid CHAT_TOKEN`);
    }
    if (rpc === "unimplemented") return unreachable(url, "it does not serve chat.v1.ChatService");
    if (rpc === "deadline_exceeded") return unreachable(url, "no answer in time");
    return refused(rpc, message);
  }
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "string" && /^[a-z_]+$/.test(code)) {
    if (code === "unauthenticated") {
      return notAuthenticated(`the server refused the token (${(err as Error).message}): set a valid CHAT_TOKEN`);
    }
    return refused(code, (err as Error).message);
  }
  return new CliError(EXIT.refused, `internal: ${err instanceof Error ? err.message : String(err)}`);
}
