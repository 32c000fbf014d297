import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { ROOT, startTestApp, type TestApp } from "@service-chat/testing";
import { afterAll, beforeAll, expect, it } from "vitest";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

it("the README's example works as written", async () => {
  const readme = await readFile(`${ROOT}/README.md`, "utf8");
  const section = readme.split("## Try it")[1] ?? "";
  const script = /```bash\n([\s\S]*?)```/.exec(section)?.[1];
  expect(script).toContain("GetHistory");
  const port = new URL(t.httpUrl).port;
  const { stdout } = await promisify(execFile)(
    "bash",
    ["-euc", (script as string).replaceAll("127.0.0.1:7000", `127.0.0.1:${port}`)],
    {
      cwd: ROOT,
      env: { ...process.env, HTTP_PORT: port },
    },
  );
  const [ack, history] = stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line));
  expect(ack.ack[0]).toMatchObject({ seq: "2", clientId: "m1" });
  expect(history.events.map((e: { seq: string }) => e.seq)).toEqual(["2", "1"]);
  expect(history.events[0].text.body).toBe("Hello, Bob!");
});
