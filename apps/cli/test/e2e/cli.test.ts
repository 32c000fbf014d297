import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { faultProxy, freePort, ROOT, startTestApp, type TestApp, until } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const BIN = fileURLToPath(new URL("../../bin/chat.js", import.meta.url));

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let t: TestApp;
let alice: string;

/** A running `chat` process (or another command) whose output is collected as it comes. */
function start(args: string[], env: Record<string, string | undefined> = {}, command = [process.execPath, BIN]) {
  const [file, ...pre] = command as [string, ...string[]];
  const child: ChildProcess = spawn(file, [...pre, ...args], {
    cwd: ROOT,
    env: { ...process.env, CHAT_URL: t.httpUrl, CHAT_TOKEN: alice, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const run: Run = { code: null, signal: null, stdout: "", stderr: "" };
  child.stdout?.on("data", (d: Buffer) => {
    run.stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    run.stderr += d.toString();
  });
  const done = new Promise<Run>((resolve) =>
    child.on("close", (code, signal) => {
      run.code = code;
      run.signal = signal;
      resolve(run);
    }),
  );
  return { child, run, done };
}

/** Runs `chat …` to the end. */
function chat(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return start(args, env).done;
}

const lines = (s: string) =>
  s
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, any>);

beforeAll(async () => {
  t = await startTestApp();
});

afterAll(async () => {
  await t?.stop();
});

describe("chat CLI", () => {
  let roomId: string;

  it("gets a development token", async () => {
    const r = await chat(["token", "alice"], { CHAT_TOKEN: undefined });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    alice = r.stdout.trim();
    expect(alice).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const json = await chat(["token", "bob", "--device", "phone", "--json"], { CHAT_TOKEN: undefined });
    expect(json.code).toBe(0);
    expect(lines(json.stdout)[0]?.token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it("creates a room and lists it", async () => {
    const created = await chat(["rooms", "create", "general", "--member", "bob", "--json"]);
    expect(created.code, created.stderr).toBe(0);
    const [room] = lines(created.stdout);
    expect(room).toMatchObject({ name: "general", type: "ROOM_TYPE_GROUP", memberCount: 2, creatorId: "alice" });
    roomId = room?.id;

    const human = await chat(["rooms", "create", "news", "--type", "channel"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^created channel #news \(1 member\): [0-9a-f-]{36}\n$/);

    const list = await chat(["rooms", "list"]);
    expect(list.code).toBe(0);
    const [header, ...rows] = list.stdout.trim().split("\n");
    expect(header).toMatch(/^ID\s+TYPE\s+NAME\s+MEMBERS\s+UNREAD$/);
    expect(rows.find((r) => r.startsWith(roomId))).toMatch(/^\S+\s+group\s+general\s+2\s+0$/);
    expect(rows.some((r) => /\schannel\s+news\s/.test(r))).toBe(true);

    const filtered = await chat(["rooms", "list", "gener", "--json"]);
    expect(lines(filtered.stdout).map((r) => r.name)).toEqual(["general"]);
  });

  it("adds and removes members", async () => {
    const added = await chat(["rooms", "add", "general", "carol", "dave", "--role", "moderator"]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toBe("added to #general: carol (moderator), dave (moderator)\n");

    const removed = await chat(["rooms", "remove", roomId, "dave", "zed"]);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toBe("removed from #general: dave\n");
    expect(removed.stderr).toBe("not members of #general: zed\n");

    const members = await chat(["rooms", "members", "general", "--json"]);
    const roles = Object.fromEntries(lines(members.stdout).map((s) => [s.member.profileId, s.role]));
    expect(roles).toEqual({ alice: "owner", bob: "member", carol: "moderator" });

    const table = await chat(["rooms", "members", "general"]);
    expect(table.stdout).toMatch(/^MEMBER\s+ROLE\s+NAME\s+JOINED\n/);
    expect(table.stdout).toMatch(/\ncarol\s+moderator\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n/);
  });

  it("sends, and history and search show the message", async () => {
    const sent = await chat(["send", "general", "hello", "from", "the", "shell"]);
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout).toMatch(/^sent to #general: seq \d+, id [0-9a-f-]{36}\n$/);

    const again = ["send", roomId, "only once", "--client-id", "cli-test-1", "--json"];
    const first = lines((await chat(again)).stdout)[0];
    const second = lines((await chat(again)).stdout)[0];
    expect(second).toEqual(first);
    expect(first).toMatchObject({ roomId, clientId: "cli-test-1" });

    const history = await chat(["history", "general"]);
    expect(history.code).toBe(0);
    const shown = history.stdout.trim().split("\n");
    expect(shown[0]).toMatch(/^\[\d\d:\d\d:\d\d\] \* alice created the room$/);
    expect(shown.at(-2)).toMatch(/^\[\d\d:\d\d:\d\d\] alice: hello from the shell$/);
    expect(shown.at(-1)).toMatch(/alice: only once$/);
    expect(shown.filter((l) => l.endsWith("only once"))).toHaveLength(1);

    const json = lines((await chat(["history", roomId, "--limit", "2", "--json"])).stdout);
    expect(json.map((e) => e.text?.body)).toEqual(["hello from the shell", "only once"]);
    expect(json[0]).toMatchObject({ type: "ROOM_EVENT_TYPE_TEXT", source: { profileId: "alice" } });

    const found = await chat(["search", "shell"]);
    expect(found.code).toBe(0);
    expect(found.stdout).toMatch(/^\[\d\d:\d\d:\d\d\] #general alice: hello from the shell\n$/);
    const inRoom = lines((await chat(["search", "shell", "--room", roomId, "--json"])).stdout);
    expect(inRoom.map((e) => e.text.body)).toEqual(["hello from the shell"]);
  });

  it("exits 2 on usage errors", async () => {
    const cases = [
      [],
      ["frobnicate"],
      ["rooms", "frob"],
      ["history"],
      ["history", "general", "--limit", "x"],
      ["history", "general", "--role", "admin"],
      ["send", "general", "--bogus"],
      ["rooms", "create", "x", "--type", "weird"],
    ];
    const runs = await Promise.all(cases.map((args) => chat(args)));
    runs.forEach((r, i) => {
      expect(r.code, cases[i]?.join(" ")).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/\(see: chat .*--help\)\n$/);
    });
  });

  it("exits 3 when the server cannot be reached", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await chat(["rooms", "list"], { CHAT_URL: url });
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      `cannot reach the server at ${url} (ECONNREFUSED): is it running? (start it with: npm start; or set CHAT_URL / --url)\n`,
    );
    const token = await chat(["token", "alice", "--url", url]);
    expect(token.code).toBe(3);
  });

  it("exits 4 without a token, or with one the server refuses", async () => {
    const none = await chat(["rooms", "list"], { CHAT_TOKEN: undefined });
    expect(none.code).toBe(4);
    expect(none.stderr).toBe("not authenticated: set CHAT_TOKEN or pass --token (get one with: chat token alice)\n");
    const bad = await chat(["rooms", "list", "--token", "not-a-jwt"]);
    expect(bad.code).toBe(4);
    expect(bad.stderr).toMatch(/^not authenticated: the server refused the token \(.+\): set a valid CHAT_TOKEN/);
  });

  it("exits 1 when the server refuses, printing the error code", async () => {
    const eve = await t.signer.sign({ sub: "eve" });
    const r = await chat(["history", roomId], { CHAT_TOKEN: eve });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^not_found: .+\n$/);
    const channel = await chat(["history", "news"], { CHAT_TOKEN: eve });
    expect(channel.code).toBe(1);
    expect(channel.stderr).toMatch(/^permission_denied: .+; join with: chat rooms join <room>\n$/);
    // The command the hint names exists and does it.
    const join = await chat(["rooms", "join", "news"], { CHAT_TOKEN: eve });
    expect(join.stderr).toBe("");
    expect(join.stdout).toBe("joined #news as member\n");
    expect((await chat(["history", "news"], { CHAT_TOKEN: eve })).code).toBe(0);
    const leave = await chat(["rooms", "leave", "news"], { CHAT_TOKEN: eve });
    expect(leave.stdout).toBe("left #news\n");
    const direct = await chat(["rooms", "create", "dm", "--type", "direct", "--member", "bob", "--member", "carol"]);
    expect(direct.code).toBe(1);
    expect(direct.stderr).toMatch(/^invalid_argument: members/);
  });

  it("send says 'retrying' while the server cannot be reached, and stores the message once when it is back", async () => {
    const proxy = await faultProxy(t.httpUrl);
    try {
      await proxy.down();
      const send = start(["send", "general", "through", "the", "outage", "--client-id", "cli-outage-1"], {
        CHAT_URL: proxy.via(t.httpUrl),
      });
      await until("the first retry", () => /retrying in/.test(send.run.stderr) || send.run.code !== null);
      await proxy.up();
      const r = await send.done;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(
        /^retrying in \d+\.\d s \((no answer|deadline_exceeded|unavailable)\); same client id cli-outage-1, stored once\n/,
      );
      expect(r.stdout).toMatch(/^sent to #general: seq \d+, id /);
      const { events } = await t.as("alice").getHistory({ roomId });
      expect(events.filter((e) => e.clientId === "cli-outage-1")).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });

  it("prints --help with the exit codes", async () => {
    const r = await chat(["--help"], { CHAT_TOKEN: undefined });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("chat tail [room]");
    expect(r.stdout).toMatch(/Exit codes:\n\s+0\s+ok\n\s+1\s+the server refused/);
    const one = await chat(["rooms", "add", "--help"]);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/^Usage: chat rooms add <room> <user>\.\.\. \[--role <role>\]/);
  });

  it("tail shows, live, what send writes in another process, and ends cleanly on SIGINT", async () => {
    const tail = start(["tail", "general"]);
    const all = start(["tail", "--json"]);
    try {
      await until("tail to be live", () => /^following #general/m.test(tail.run.stderr) || tail.run.code !== null);
      await until(
        "the second tail",
        () => all.run.stderr.includes("following all your rooms") || all.run.code !== null,
      );
      expect(tail.run.stdout).toBe("");

      const bob = await t.signer.sign({ sub: "bob" });
      expect((await chat(["send", "news", "elsewhere"])).code).toBe(0);
      expect((await chat(["send", "general", "live", "from", "bob"], { CHAT_TOKEN: bob })).code).toBe(0);
      await until("the message in tail", () => tail.run.stdout.includes("bob: live from bob"));
      expect(tail.run.stdout).toMatch(/^\[\d\d:\d\d:\d\d\] bob: live from bob\n$/);

      await until("both messages in the other tail", () => all.run.stdout.split("\n").length >= 3);
      expect(lines(all.run.stdout).map((e) => e.text.body)).toEqual(["elsewhere", "live from bob"]);
    } finally {
      tail.child.kill("SIGINT");
      all.child.kill("SIGINT");
    }
    const [ended, other] = await Promise.all([tail.done, all.done]);
    expect(ended.code, ended.stderr).toBe(0);
    expect(other.code, other.stderr).toBe(0);
  });

  it("runs the README's command line example as written", async () => {
    const readme = await readFile(`${ROOT}/README.md`, "utf8");
    const script = /```bash\n([\s\S]*?)```/.exec(readme.split("## Command line")[1] ?? "")?.[1];
    expect(script).toContain("npx chat send");
    const r = await start(["-euc", script as string], { CHAT_TOKEN: undefined }, ["bash"]).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^created group #team \(2 members\): [0-9a-f-]{36}\nsent to #team: seq 2, id /);
    expect(r.stdout).toMatch(
      /\n\[\d\d:\d\d:\d\d\] \* alice created the room\n\[\d\d:\d\d:\d\d\] alice: Hello, Bob!\n$/,
    );
  });
});
