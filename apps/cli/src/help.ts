/** What each command takes, shown by `chat --help` and `chat <command> --help`. */
export const USAGE: Record<string, { usage: string; about: string; options?: string[] }> = {
  token: {
    usage: "chat token <user> [--device <id>]",
    about: "print a development token for <user> (servers without OAUTH2_ISSUER)",
    options: ["--device <id>     put this device id in the token"],
  },
  "rooms create": {
    usage: "chat rooms create <name> [--type group|channel|direct] [--member <user>]...",
    about: "create a room (you are its owner); direct rooms take exactly one --member",
    options: [
      "--type <type>     group (private, default), channel (public) or direct",
      "--member <user>   add a member; repeat for more",
    ],
  },
  "rooms list": {
    usage: "chat rooms list [query] [--limit n]",
    about: "your rooms and the public channels, newest first; query matches name or description",
    options: ["--limit <n>       at most n rooms (default 100)"],
  },
  "rooms members": {
    usage: "chat rooms members <room> [--limit n]",
    about: "the room's members and their roles",
    options: ["--limit <n>       at most n members (default 1000)"],
  },
  "rooms add": {
    usage: "chat rooms add <room> <user>... [--role <role>]",
    about: "add members (members already in stay as they are)",
    options: ["--role <role>     owner, admin, moderator, member (default) or guest"],
  },
  "rooms join": {
    usage: "chat rooms join <room> [--role member|guest]",
    about: "join a public channel yourself (as member, or guest)",
    options: ["--role <role>     member (default) or guest"],
  },
  "rooms leave": {
    usage: "chat rooms leave <room>",
    about: "leave a room",
  },
  "rooms remove": {
    usage: "chat rooms remove <room> <user>...",
    about: "remove members; remove yourself to leave",
  },
  send: {
    usage: "chat send <room> <text...> [--client-id <id>]",
    about: "send a text message ('-' as the text reads it from stdin); retries never duplicate it",
    options: ["--client-id <id>  the message's idempotency key: running the command again with it stores nothing new"],
  },
  history: {
    usage: "chat history <room> [--limit n]",
    about: "the room's newest events, oldest first",
    options: ["--limit <n>       how many events (default 20)"],
  },
  search: {
    usage: "chat search <query...> [--room <room>] [--limit n]",
    about: 'full-text search in your rooms, newest first (web-search syntax: "exact phrase", -word, or)',
    options: ["--room <room>     search this room only", "--limit <n>       at most n results (default 20)"],
  },
  tail: {
    usage: "chat tail [room] [--device <id>]",
    about: "print events as they happen, in one room or all of yours; reconnects by itself; Ctrl-C ends it",
    options: ["--device <id>     the device id of the live session (default: a new one per run)"],
  },
};

const GLOBAL = `Options for every command:
  --url <url>       the server (default: $CHAT_URL, else http://127.0.0.1:7000)
  --token <jwt>     the token to act with (default: $CHAT_TOKEN)
  --json            one JSON object per line (protobuf JSON names), for scripts
  -h, --help        this help; chat <command> --help for one command

<room> is a room id or a room's exact name.

Exit codes:
  0  ok
  1  the server refused (its error code is printed: not_found, permission_denied, ...)
  2  usage error (unknown command or option, missing argument)
  3  cannot reach the server (down, wrong --url, no answer in time)
  4  not authenticated (no token, or the server does not accept it)`;

export function mainHelp(): string {
  const lines = Object.values(USAGE).map((c) => `  ${c.usage}\n      ${c.about}`);
  return `chat: the Service Chat command line

Usage:
${lines.join("\n")}

${GLOBAL}

Example:
  export CHAT_TOKEN=$(chat token alice)
  chat rooms create general --member bob
  chat send general "Hello, Bob!"
  chat history general
`;
}

export function commandHelp(name: string): string {
  const c = USAGE[name];
  if (!c) return mainHelp();
  const options = c.options ? `\nOptions:\n${c.options.map((o) => `  ${o}`).join("\n")}\n` : "";
  return `Usage: ${c.usage}\n\n${c.about}\n${options}\n${GLOBAL}\n`;
}

/** The commands of a group (`rooms`), for `chat rooms --help`. */
export function groupHelp(group: string): string {
  const names = Object.keys(USAGE).filter((n) => n.startsWith(`${group} `));
  return `Usage:\n${names.map((n) => `  ${USAGE[n]?.usage}\n      ${USAGE[n]?.about}`).join("\n")}\n\n${GLOBAL}\n`;
}
