import { spawn } from "node:child_process";
import net from "node:net";
import { freePort, ROOT } from "@service-chat/testing";
import { expect, it } from "vitest";

it("exits non-zero at once with one line naming the port when the HTTP port is taken", async () => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", () => resolve()));
  const port = (taken.address() as net.AddressInfo).port;
  try {
    const child = spawn(process.execPath, ["--import", "tsx", "apps/default/src/main.ts"], {
      cwd: ROOT,
      env: {
        ...process.env,
        DB_URI: "pglite://memory",
        BIND_HOST: "127.0.0.1",
        HTTP_PORT: String(port),
        GRPC_PORT: String(await freePort()),
        LOG_LEVEL: "silent",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    expect(code).toBe(1);
    expect(stderr.trim().split("\n").at(-1)).toBe(
      `service-chat: port ${port} on 127.0.0.1 is already in use (HTTP_PORT)`,
    );
  } finally {
    taken.close();
  }
});
