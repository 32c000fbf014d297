import type { CallOptions, Client } from "@connectrpc/connect";
import type { ChatService } from "@service-chat/api";
import { type ChatClient, type ChatClientOptions, createChatClient } from "@service-chat/sdk";
import { notAuthenticated, usageError } from "./errors.js";
import type { Output } from "./output.js";

/** The parsed options of a command line (every command's, global ones included). */
export interface Options {
  url?: string;
  token?: string;
  json?: boolean;
  help?: boolean;
  device?: string;
  type?: string;
  member?: string[];
  role?: string;
  limit?: string;
  room?: string;
  "client-id"?: string;
}

/** Every call gives up after this long without an answer. */
export const CALL: CallOptions = { timeoutMs: 20_000 };

/** What a command runs with: where the server is, who the caller is, where output goes. */
export class Context {
  private client?: ChatClient;
  private readonly others: ChatClient[] = [];

  constructor(
    /** The command's name, as typed (`rooms add`), for usage messages. */
    readonly command: string,
    /** The positional arguments after the command's name. */
    readonly args: string[],
    readonly options: Options,
    readonly url: string,
    readonly token: string | undefined,
    readonly out: Output,
  ) {}

  /** The SDK client for this server and token (one per run); fails with exit 4 without a token. */
  chat(): ChatClient {
    if (!this.token) throw notAuthenticated();
    this.client ??= createChatClient({ baseUrl: this.url, token: this.token });
    return this.client;
  }

  /** The caller's profile id: the token's `sub` claim. */
  me(): string {
    if (!this.token) throw notAuthenticated();
    const sub = tokenClaim(this.token, "sub");
    if (!sub) throw notAuthenticated("the token names nobody (no sub claim): set a valid CHAT_TOKEN");
    return sub;
  }

  get api(): Client<typeof ChatService> {
    return this.chat().api;
  }

  /** A separate SDK client for a live session, closed with the others. */
  session(extra: Pick<ChatClientOptions, "deviceId" | "store">): ChatClient {
    if (!this.token) throw notAuthenticated();
    const client = createChatClient({ baseUrl: this.url, token: this.token, ...extra });
    this.others.push(client);
    return client;
  }

  /** Ends the SDK clients' sessions and timers. */
  close(): void {
    for (const c of [this.client, ...this.others]) c?.close();
  }

  usage(message: string): Error {
    return usageError(message, this.command);
  }

  /** The positional argument at `i`, or a usage error naming it. */
  arg(i: number, name: string): string {
    const v = this.args[i];
    if (v === undefined || v === "") throw this.usage(`missing <${name}>`);
    return v;
  }

  /** Fails when more positional arguments were given than the command takes. */
  maxArgs(n: number): void {
    if (this.args.length > n) throw this.usage(`unexpected argument "${this.args[n]}"`);
  }

  /** `--limit` as a whole number in [1, max], or the default. */
  limit(fallback: number, max = 10_000): number {
    const raw = this.options.limit;
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < 1 || n > max) throw this.usage(`--limit must be a whole number from 1 to ${max}`);
    return n;
  }
}

/** A string claim of a JWT, read without checking it (the server does). */
export function tokenClaim(token: string | undefined, name: string): string | undefined {
  try {
    const claims = JSON.parse(Buffer.from(token?.split(".")[1] ?? "", "base64url").toString("utf8"));
    const value = claims?.[name];
    return typeof value === "string" && value ? value : undefined;
  } catch {
    return undefined;
  }
}
