import { parseArgs } from "node:util";
import type { Context, Options } from "./context.js";
import { CliError, EXIT, toCliError, usageError } from "./errors.js";
import { commandHelp, groupHelp, mainHelp } from "./help.js";

export const DEFAULT_URL = "http://127.0.0.1:7000";

const OPTIONS = {
  url: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  device: { type: "string" },
  type: { type: "string" },
  member: { type: "string", multiple: true },
  role: { type: "string" },
  limit: { type: "string" },
  room: { type: "string" },
  "client-id": { type: "string" },
} as const;

const GLOBAL = ["url", "token", "json", "help"];

type Run = (ctx: Context) => Promise<void>;

const rooms = () => import("./commands/rooms.js");
const messages = () => import("./commands/messages.js");

/** Each command (loaded when run), and the options it takes besides the global ones. */
const COMMANDS: Record<string, { load: () => Promise<Run>; options: string[] }> = {
  token: { load: async () => (await import("./commands/token.js")).token, options: ["device"] },
  "rooms create": { load: async () => (await rooms()).create, options: ["type", "member"] },
  "rooms list": { load: async () => (await rooms()).list, options: ["limit"] },
  "rooms members": { load: async () => (await rooms()).members, options: ["limit"] },
  "rooms add": { load: async () => (await rooms()).add, options: ["role"] },
  "rooms remove": { load: async () => (await rooms()).remove, options: [] },
  "rooms join": { load: async () => (await rooms()).join, options: ["role"] },
  "rooms leave": { load: async () => (await rooms()).leave, options: [] },
  send: { load: async () => (await messages()).send, options: ["client-id"] },
  history: { load: async () => (await messages()).history, options: ["limit"] },
  search: { load: async () => (await messages()).search, options: ["room", "limit"] },
  tail: { load: async () => (await import("./commands/tail.js")).tail, options: ["device"] },
};

function parse(argv: string[]) {
  try {
    const { values, positionals, tokens } = parseArgs({
      args: argv,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
    const given = tokens.filter((t) => t.kind === "option").map((t) => t.name);
    return { values: values as Options, positionals, given };
  } catch (err) {
    const e = err as { code?: string; message: string };
    const option = /'(-[^']*)'/.exec(e.message)?.[1];
    if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      throw usageError(`unknown option ${option ?? ""} (text that starts with "-" goes after "--")`);
    }
    if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option) {
      throw usageError(`${option.split(" ")[0]} needs a value`);
    }
    throw usageError(e.message.split("\n")[0] ?? "bad command line");
  }
}

/** The command's name (`rooms add`) and its positional arguments, or the help to print. */
function route(positionals: string[], help: boolean): { name: string; args: string[] } | { help: string } {
  const [first, second] = positionals;
  if (first === "help") {
    const topic = positionals.slice(1).join(" ");
    return { help: topic === "rooms" ? groupHelp("rooms") : commandHelp(topic) };
  }
  if (!first) {
    if (help) return { help: mainHelp() };
    throw usageError("missing command");
  }
  if (first === "rooms") {
    if (!second || second === "help") {
      if (help || second === "help") return { help: groupHelp("rooms") };
      throw usageError("missing what to do with rooms: create, list, members, add, remove, join or leave", "rooms");
    }
    return check({ name: `rooms ${second}`, args: positionals.slice(2) }, "rooms");
  }
  return check({ name: first, args: positionals.slice(1) });
}

function check(r: { name: string; args: string[] }, group?: string) {
  if (!COMMANDS[r.name]) throw usageError(`unknown command "${r.name}"`, group);
  return r;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, positionals, given } = parse(argv);
  const routed = route(positionals, values.help === true);
  if ("help" in routed) {
    process.stdout.write(`${routed.help.trimEnd()}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS[routed.name] as (typeof COMMANDS)[string];
  if (values.help) {
    process.stdout.write(`${commandHelp(routed.name).trimEnd()}\n`);
    return EXIT.ok;
  }
  const stray = given.find((o) => !GLOBAL.includes(o) && !command.options.includes(o));
  if (stray) throw usageError(`chat ${routed.name} does not take --${stray}`, routed.name);

  const url = (values.url || env.CHAT_URL || DEFAULT_URL).replace(/\/+$/, "");
  if (!/^https?:\/\/[^/\s]+/.test(url) || !URL.canParse(url)) {
    throw usageError(`--url must be an http:// or https:// address, not "${url}"`);
  }
  const [{ Context }, { Output }, run] = await Promise.all([
    import("./context.js"),
    import("./output.js"),
    command.load(),
  ]);
  const token = values.token || env.CHAT_TOKEN || undefined;
  const ctx = new Context(routed.name, routed.args, values, url, token, new Output(values.json === true));
  try {
    await run(ctx);
    return EXIT.ok;
  } catch (err) {
    throw toCliError(err, url);
  } finally {
    ctx.close();
  }
}

function exit(code: number): void {
  process.stdout.write("", () => process.exit(code));
}

process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(EXIT.ok);
});

try {
  exit(await main(process.argv.slice(2)));
} catch (err) {
  const e = err instanceof CliError ? err : toCliError(err, "");
  process.stderr.write(`${e.message}\n`);
  exit(e.exitCode);
}
