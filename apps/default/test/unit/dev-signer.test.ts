import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDevSigner, DevSignerKeyError } from "@service-chat/core";
import { expect, it } from "vitest";

it("shares its key through DEV_SIGNER_KEY_FILE: another signer on the same file accepts its tokens", async () => {
  const dir = await mkdtemp(join(tmpdir(), "signer-"));
  try {
    const file = join(dir, "dev.jwk");
    const one = await createDevSigner(file);
    const two = await createDevSigner(file);
    const token = await one.sign({ sub: "alice", device_id: "d" });
    await expect(two.verify(token)).resolves.toMatchObject({ profileId: "alice", deviceId: "d" });
    const stranger = await createDevSigner();
    await expect(stranger.verify(token)).rejects.toMatchObject({ code: "unauthenticated" });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it("refuses a DEV_SIGNER_KEY_FILE that is not its key, naming the file and the problem, and leaves the file as it was", async () => {
  const dir = await mkdtemp(join(tmpdir(), "signer-"));
  try {
    const cases: [string, RegExp][] = [
      ["-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n", /not JSON/],
      [JSON.stringify({ kty: "RSA", n: "x", e: "AQAB" }), /not a P-256 private key/],
      [JSON.stringify({ kty: "EC", crv: "P-256", x: "AA", y: "AA" }), /not a P-256 private key/],
      [JSON.stringify({ kty: "EC", crv: "P-256", x: "AA", y: "AA", d: "AA" }), /not a development signer key/],
    ];
    for (const [content, problem] of cases) {
      const file = join(dir, "dev.jwk");
      await writeFile(file, content);
      const refused = await createDevSigner(file).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(DevSignerKeyError);
      expect((refused as Error).message).toContain(file);
      expect((refused as Error).message).toMatch(problem);
      expect(await readFile(file, "utf8")).toBe(content);
    }
    // A directory where the file should be: cannot be read.
    await expect(createDevSigner(dir)).rejects.toThrow(/cannot be read \(EISDIR\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
