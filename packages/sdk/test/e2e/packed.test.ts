import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { ROOT, startTestApp, type TestApp } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The SDK and the CLI as someone outside the repository gets them: `npm pack` (after the build the
// e2e set-up runs), installed from the tarballs into an empty project, used against a running server.

const run = promisify(execFile);
const PACKAGES = ["packages/api", "packages/protocol", "packages/sdk", "apps/cli"];
const PROGRAM = fileURLToPath(new URL("./packed.mjs", import.meta.url));

let t: TestApp;
let dir: string;
let tarballs: string[];

beforeAll(async () => {
  t = await startTestApp();
  dir = await mkdtemp(join(tmpdir(), "chat-packed-"));
  const packed = await run("npm", ["pack", "--pack-destination", dir, ...PACKAGES.flatMap((p) => ["-w", p])], {
    cwd: ROOT,
  });
  tarballs = packed.stdout.trim().split("\n");
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: "outside", private: true, type: "module" }));
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", ...tarballs.map((f) => `./${f}`)], {
    cwd: dir,
  });
  await copyFile(PROGRAM, join(dir, "program.mjs"));
});

afterAll(async () => {
  await t?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}) => ({ ...process.env, CHAT_URL: t.httpUrl, ...extra });

describe("the packed SDK and CLI", () => {
  it("pack only their build: JavaScript and declarations, no TypeScript sources", async () => {
    expect(tarballs).toEqual([
      "service-chat-api-0.1.0.tgz",
      "service-chat-protocol-0.1.0.tgz",
      "service-chat-sdk-0.1.0.tgz",
      "service-chat-cli-0.1.0.tgz",
    ]);
    const sdk = join(dir, "node_modules/@service-chat/sdk");
    const files = await readdir(join(sdk, "dist"));
    expect(files).toContain("index.js");
    expect(files).toContain("index.d.ts");
    await expect(stat(join(sdk, "src"))).rejects.toThrow();
    await expect(stat(join(sdk, "dist/.tsbuildinfo"))).rejects.toThrow();
    // Nothing compiles TypeScript at run time once installed.
    await expect(stat(join(dir, "node_modules/tsx"))).rejects.toThrow();
  });

  it("the SDK, from plain Node: connect, send, receive live, and resume after a restart", async () => {
    const tokens = {
      ALICE_TOKEN: await t.signer.sign({ sub: "alice" }),
      BOB_TOKEN: await t.signer.sign({ sub: "bob" }),
      BOB_STATE: join(dir, "bob-state.json"),
    };
    const live = await run(process.execPath, ["program.mjs", "live"], { cwd: dir, env: env(tokens) });
    const first = JSON.parse(live.stdout) as { room: string; state: string; seen: { seq: number; body?: string }[] };
    expect(first.state).toBe("closed");
    expect(first.seen.at(-1)).toMatchObject({ seq: 2, body: "sent live" });

    const resume = await run(process.execPath, ["program.mjs", "resume"], {
      cwd: dir,
      env: env({ ...tokens, ROOM_ID: first.room }),
    });
    // Only what bob missed: no repeat of what the first run showed, nothing lost.
    expect(JSON.parse(resume.stdout).seen).toEqual([{ seq: 3, kind: "text", body: "sent while bob was away" }]);
  });

  it("the SDK's declarations type-check a TypeScript program that uses it (strict, NodeNext)", async () => {
    await writeFile(
      join(dir, "typed.ts"),
      [
        'import { type ChatClient, createChatClient, type RoomEvent, RoomType } from "@service-chat/sdk";',
        'import { fileStore } from "@service-chat/sdk/node";',
        'const chat: ChatClient = createChatClient({ baseUrl: "http://x", token: "t", store: fileStore("s.json") });',
        'chat.on("event", (e: RoomEvent) => console.log(e.seq + 1n));',
        'void chat.api.createRoom({ name: "n", type: RoomType.GROUP });',
        "// @ts-expect-error: a typo in a call's field is caught",
        'void chat.api.createRoom({ nmae: "n" });',
        "",
      ].join("\n"),
    );
    const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
    const args = ["--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext"];
    const types = ["--types", "node", "--typeRoots", join(ROOT, "node_modules/@types")];
    await run(process.execPath, [tsc, ...args, "--target", "es2022", ...types, "typed.ts"], { cwd: dir });
  });

  it("the SDK in a browser bundle (esbuild, platform browser) with no Node built-in in it", async () => {
    await writeFile(
      join(dir, "web.mjs"),
      'import { createChatClient } from "@service-chat/sdk";\nwindow.chat = createChatClient;\n',
    );
    const esbuild = join(ROOT, "node_modules/.bin/esbuild");
    const out = await run(esbuild, ["web.mjs", "--bundle", "--platform=browser", "--format=esm", "--outfile=web.js"], {
      cwd: dir,
    });
    expect(out.stderr).toContain("web.js");
    expect((await stat(join(dir, "web.js"))).size).toBeGreaterThan(10_000);
  });

  it("the CLI, from its tarball: `chat --help` runs compiled JavaScript only, and it talks to the server", async () => {
    const bin = join(dir, "node_modules/.bin/chat");
    const started = performance.now();
    const help = await run(bin, ["--help"], { cwd: dir, env: env() });
    const helpMs = performance.now() - started;
    // What it costs depends on the machine's load (CPU time too: about 65 ms on a quiet machine,
    // twice that beside two busy cores), so it is reported, not bounded.
    const report =
      "process.on('exit', () => { const u = process.cpuUsage(); console.error('cpu ' + (u.user + u.system)); })";
    const cli = join(dir, "node_modules/@service-chat/cli/bin/chat.js");
    const timed = await run(process.execPath, ["--import", `data:text/javascript,${report}`, cli, "--help"], {
      cwd: dir,
    });
    const cpuMs = Number(/cpu (\d+)/.exec(timed.stderr)?.[1]) / 1000;
    console.log(`chat --help from the tarball: ${Math.round(helpMs)} ms, ${Math.round(cpuMs)} ms of CPU`);
    // What keeps it cheap is checked instead: it runs compiled JavaScript, and nothing compiles
    // TypeScript (tsx costs 180-240 ms of CPU even with its cache warm). A module hook lists every
    // module it loads.
    await writeFile(
      join(dir, "hooks.mjs"),
      'import { appendFileSync } from "node:fs";\n' +
        "export async function load(url, context, next) {\n" +
        '  appendFileSync(process.env.LOADED_LOG, url + "\\n");\n' +
        "  return next(url, context);\n" +
        "}\n",
    );
    await writeFile(
      join(dir, "list-loaded.mjs"),
      'import { register } from "node:module";\nregister("./hooks.mjs", import.meta.url);\n',
    );
    const log = join(dir, "loaded.log");
    const listed = await run(process.execPath, ["--import", "./list-loaded.mjs", cli, "--help"], {
      cwd: dir,
      env: env({ LOADED_LOG: log }),
    });
    expect(listed.stdout).toBe(help.stdout);
    const loaded = (await readFile(log, "utf8")).trim().split("\n");
    const ours = loaded.filter((url) => url.includes("/node_modules/@service-chat/"));
    expect(ours).toContain(pathToFileURL(join(dir, "node_modules/@service-chat/cli/dist/main.js")).href);
    expect(ours.filter((url) => !/\/@service-chat\/[^/]+\/(dist|bin)\/[^?]*\.js$/.test(url))).toEqual([]);
    expect(loaded.filter((url) => /\.[cm]?tsx?$|\/tsx\//.test(url))).toEqual([]);
    expect(help.stdout).toContain("chat");
    expect(help.stdout).toContain("Exit codes:");

    const token = (await run(bin, ["token", "carol"], { cwd: dir, env: env() })).stdout.trim();
    await run(bin, ["rooms", "create", "from-tarball"], { cwd: dir, env: env({ CHAT_TOKEN: token }) });
    await run(bin, ["send", "from-tarball", "hello from the tarball"], { cwd: dir, env: env({ CHAT_TOKEN: token }) });
    const history = await run(bin, ["history", "from-tarball"], { cwd: dir, env: env({ CHAT_TOKEN: token }) });
    expect(history.stdout).toContain("hello from the tarball");
  });
});
