import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { freePort, until } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envOf, execForm, REPO, type Stage, stages } from "../dockerfile.js";

// With no Docker engine here, the image's contents are built the way the Dockerfile builds them:
// its instructions carried out in order in a scratch folder per stage (COPY from the repository
// minus what .dockerignore leaves out, RUN in the WORKDIR, COPY --from the build stage), then its CMD run
// with its ENV from the runtime folder alone. A file the Dockerfile forgets to copy fails here.

const [build, runtime] = stages() as [Stage, Stage];
const scratch = mkdtempSync(join(tmpdir(), "chat-image-"));
// .dockerignore as the build context reads it: a bare name (or one after a leading double star) matches
// any part of a path, a/b a path and what is under it, *.ext a suffix.
const ignoreRules = readFileSync(join(REPO, ".dockerignore"), "utf8")
  .split("\n")
  .map((l) => l.trim().replace(/^\*\*\//, ""))
  .filter((l) => l !== "" && !l.startsWith("#"));
const ignored = (path: string) => {
  const rel = relative(REPO, path);
  const parts = rel.split("/");
  return ignoreRules.some((r) =>
    r.startsWith("*.")
      ? rel.endsWith(r.slice(1))
      : r.includes("/")
        ? rel === r || rel.startsWith(`${r}/`)
        : parts.includes(r),
  );
};
let child: ChildProcess | undefined;
let output = "";

/** The folder standing for `path` inside a stage's file system. */
const inStage = (root: string, path: string, workdir: string) =>
  join(root, path.startsWith("/") ? path : join(workdir, path));

function carryOut(stage: Stage, root: string, from: Record<string, string>): string {
  let workdir = "/";
  for (const step of stage.steps) {
    if (step.keyword === "WORKDIR") {
      workdir = step.text;
      mkdirSync(join(root, workdir), { recursive: true });
    } else if (step.keyword === "COPY") {
      const [dest, ...sources] = [step.args.at(-1)!, ...step.args.slice(0, -1)];
      for (const src of sources) {
        const origin = step.from ? join(from[step.from]!, src) : join(REPO, src);
        const target = inStage(root, dest.endsWith("/") ? join(dest, src.split("/").at(-1)!) : dest, workdir);
        cpSync(origin, target, {
          recursive: true,
          verbatimSymlinks: true,
          filter: (p) => step.from !== undefined || !ignored(p),
        });
      }
    } else if (step.keyword === "RUN" && stage === build) {
      const r = spawnSync("sh", ["-c", step.text], { cwd: join(root, workdir), stdio: "pipe", encoding: "utf8" });
      if (r.status !== 0) throw new Error(`RUN ${step.text} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
    }
  }
  return join(root, workdir);
}

beforeAll(() => {
  const buildRoot = join(scratch, "build");
  const runRoot = join(scratch, "run");
  const buildDir = carryOut(build, buildRoot, {});
  expect(existsSync(join(buildDir, "apps/default/dist/main.js"))).toBe(true);
  // COPY --from=build /src/... : paths are absolute in the build stage's file system.
  carryOut(runtime, runRoot, { [build.name!]: buildRoot });
}, 900_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill("SIGTERM");
    await new Promise((r) => child?.once("exit", r));
  }
  rmSync(scratch, { recursive: true, force: true });
});

describe("the image's contents, built as the Dockerfile builds them", () => {
  it("hold no TypeScript sources and no development tools", () => {
    const app = join(scratch, "run/app");
    expect(existsSync(join(app, "apps/default/src"))).toBe(false);
    expect(existsSync(join(app, "node_modules/typescript"))).toBe(false);
    expect(existsSync(join(app, "node_modules/tsx"))).toBe(false);
    expect(existsSync(join(app, "node_modules/vite"))).toBe(false);
    const sql = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".sql"));
    expect(sql(join(app, "apps/default/dist/db/migrations"))).toEqual(
      sql(join(REPO, "apps/default/src/db/migrations")),
    );
  });

  it("start from the CMD with the image's environment, answer /readyz and serve the web chat, pass the HEALTHCHECK, stop on SIGTERM", async () => {
    const app = join(scratch, "run/app");
    const [http, grpc] = [await freePort(), await freePort()];
    const env = {
      PATH: process.env.PATH ?? "",
      ...envOf(runtime),
      // What a deployment adds: its ports, its data volume, its identity provider.
      HTTP_PORT: String(http),
      GRPC_PORT: String(grpc),
      DB_URI: `pglite://${join(scratch, "data")}`,
      OAUTH2_ISSUER: "https://id.example.com",
      OAUTH2_JWT_VERIFY_AUDIENCE: "service_chat",
    };
    const [command, ...args] = execForm(runtime.steps.find((s) => s.keyword === "CMD"))!;
    child = spawn(command === "node" ? process.execPath : command!, args, { cwd: app, env, stdio: "pipe" });
    const keep = (d: Buffer) => {
      output += d.toString();
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    await until("the image's process to answer /readyz", async () => {
      if (child?.exitCode !== null) throw new Error(`it exited (${child?.exitCode}):\n${output}`);
      const res = await fetch(`http://127.0.0.1:${http}/readyz`).catch(() => undefined);
      return res?.ok === true;
    });
    const web = await fetch(`http://127.0.0.1:${http}/`);
    expect(await web.text()).toMatch(/^<!doctype html>/i); // the web chat is in the image too
    const check = runtime.steps.find((s) => s.keyword === "HEALTHCHECK")!;
    const probe = JSON.parse(check.text.slice(check.text.indexOf("["))) as string[];
    const r = spawnSync(process.execPath, probe.slice(1), { env, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);

    child.kill("SIGTERM");
    const code = await new Promise((resolve) => child?.once("exit", (c) => resolve(c)));
    expect(code).toBe(0);
  });
});
