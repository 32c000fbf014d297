import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDevSigner } from "@service-chat/core";
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
