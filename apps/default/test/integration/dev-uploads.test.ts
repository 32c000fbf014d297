import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestApp, type TestApp } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestApp;
let dir: string;
let token: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "chat-uploads-"));
  t = await startTestApp({ DEV_UPLOADS_DIR: dir });
  token = await t.signer.sign({ sub: "uploader" });
});
afterAll(async () => {
  await t?.stop();
  await rm(dir, { recursive: true, force: true });
});

const ask = (body: unknown, auth = `Bearer ${token}`) =>
  fetch(`${t.httpUrl}/dev/uploads`, {
    method: "POST",
    headers: { authorization: auth, "content-type": "application/json" },
    body: JSON.stringify(body),
  });

describe("the development upload store", () => {
  it("publishes its endpoint to the web chat", async () => {
    expect(await (await fetch(`${t.httpUrl}/web-config.json`)).json()).toEqual({ uploadEndpoint: "/dev/uploads" });
  });

  it("hands out an upload URL, takes the bytes once, and serves them back", async () => {
    const res = await ask({ filename: "notes 1.txt", mimeType: "text/plain", sizeBytes: 5 });
    expect(res.status).toBe(200);
    const { uploadUrl, uri } = (await res.json()) as { uploadUrl: string; uri: string };
    expect(uri).toBe(`${t.httpUrl}${uploadUrl}/notes%201.txt`);
    expect((await fetch(`${t.httpUrl}${uploadUrl}`, { method: "PUT", body: "hello" })).status).toBe(201);
    expect((await fetch(`${t.httpUrl}${uploadUrl}`, { method: "PUT", body: "again" })).status).toBe(409);
    const got = await fetch(uri);
    expect(got.status).toBe(200);
    expect(got.headers.get("content-type")).toBe("application/octet-stream");
    expect(got.headers.get("content-disposition")).toBe("attachment; filename*=UTF-8''notes%201.txt");
    expect(got.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await got.text()).toBe("hello");
  });

  it("serves images inline, but never SVG", async () => {
    for (const [mimeType, inline] of [
      ["image/png", true],
      ["image/svg+xml", false],
    ] as const) {
      const { uploadUrl, uri } = (await (await ask({ filename: "x", mimeType, sizeBytes: 3 })).json()) as {
        uploadUrl: string;
        uri: string;
      };
      await fetch(`${t.httpUrl}${uploadUrl}`, { method: "PUT", body: "abc" });
      const got = await fetch(uri);
      expect(got.headers.get("content-type")).toBe(inline ? mimeType : "application/octet-stream");
      expect(got.headers.get("content-security-policy")).toContain("sandbox");
    }
  });

  it("refuses callers without a valid token, bad requests and more bytes than announced, saying why", async () => {
    expect((await ask({ filename: "a", mimeType: "text/plain", sizeBytes: 1 }, "")).status).toBe(401);
    expect((await ask({ filename: "a", mimeType: "text/plain", sizeBytes: 1 }, "Bearer nope")).status).toBe(401);
    const bad = await ask({ filename: "../etc/passwd", mimeType: "text/plain", sizeBytes: 1 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/^filename must be/);
    expect((await ask({ filename: "a", mimeType: "nope", sizeBytes: 1 })).status).toBe(400);
    expect((await ask({ filename: "a", mimeType: "text/plain", sizeBytes: 1e12 })).status).toBe(400);
    const { uploadUrl } = (await (await ask({ filename: "a", mimeType: "text/plain", sizeBytes: 2 })).json()) as {
      uploadUrl: string;
    };
    expect((await fetch(`${t.httpUrl}${uploadUrl}`, { method: "PUT", body: "too long" })).status).toBe(413);
    expect((await fetch(`${t.httpUrl}/dev/uploads/${"0".repeat(32)}/x`)).status).toBe(404);
    expect((await fetch(`${t.httpUrl}/dev/uploads/..%2f..%2fetc/x`)).status).toBe(404);
    expect((await readdir(dir)).every((f) => /^[0-9a-f]{32}\.(json|bin)$/.test(f))).toBe(true);
  });
});
