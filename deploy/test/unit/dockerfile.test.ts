import { readFileSync } from "node:fs";
import { validate } from "dockerfile-utils";
import { describe, expect, it } from "vitest";
import { DOCKERFILE, envOf, execForm, REPO, stages } from "../dockerfile.js";

// The image as the Dockerfile describes it (no Docker engine needed): linted, then held to what
// production asks of it. deploy/test/e2e/image.test.ts builds its contents and runs them.

const all = stages();
const runtime = all.at(-1)!;
const last = (keyword: string) => runtime.steps.filter((s) => s.keyword === keyword).at(-1);

describe("Dockerfile", () => {
  it("passes the linter", () => {
    expect(validate(DOCKERFILE).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it("the linter does catch mistakes (so the check above can fail)", () => {
    expect(validate("FROM node:20\nCMD ['node', 'x.js']\nCMD node y.js\nWORKDIR app\n").length).toBeGreaterThan(0);
  });

  it("is multi-stage, and runs on a small Node 20 image", () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    expect(runtime.image).toMatch(/^node:20(\.\d+)*-(bookworm|bullseye)-slim$|^node:20(\.\d+)*-alpine/);
  });

  it("the runtime stage holds only the build output, taken from the build stage", () => {
    const copies = runtime.steps.filter((s) => s.keyword === "COPY" || s.keyword === "ADD");
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      expect(c.from, `${c.keyword} ${c.text}`).toBe(all[0]!.name);
      for (const src of c.args.slice(0, -1)) expect(src).toMatch(/\/dist$|package\.json$|node_modules$/);
    }
  });

  it("runs the compiled build with plain node, as PID 1 in exec form so SIGTERM reaches it", () => {
    expect(execForm(last("CMD"))).toEqual(["node", "apps/default/dist/main.js"]);
    expect(last("ENTRYPOINT")).toBeUndefined();
    expect(last("STOPSIGNAL")?.text ?? "SIGTERM").toBe("SIGTERM");
  });

  it("runs as a user that is not root", () => {
    const user = last("USER")?.text;
    expect(user).toBeDefined();
    expect(["root", "0", "0:0"]).not.toContain(user);
    const cmdIndex = runtime.steps.findIndex((s) => s.keyword === "CMD");
    expect(runtime.steps.findIndex((s) => s.keyword === "USER")).toBeLessThan(cmdIndex);
  });

  it("has a HEALTHCHECK on /healthz", () => {
    expect(last("HEALTHCHECK")?.text).toMatch(/\bCMD\b.*\/healthz/);
  });

  it("keeps secrets files out of the build context (.dockerignore)", () => {
    const ignored = readFileSync(`${REPO}.dockerignore`, "utf8").split("\n");
    expect(ignored).toContain(".env");
    expect(ignored).toContain("**/secrets.env");
    expect(ignored).toContain("**/node_modules");
  });

  it("listens beyond loopback and keeps no secret in the image", () => {
    const env = envOf(runtime);
    expect(env.BIND_HOST).toBe("0.0.0.0");
    for (const name of Object.keys(env)) expect(name).not.toMatch(/SECRET|PASSWORD|TOKEN|KEY/);
  });
});
