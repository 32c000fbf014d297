import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, type ServiceProcess, startService, until } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Debian's `prometheus` package: `prometheus` and `promtool`.
const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "../../../..");
const OBS = join(ROOT, "deploy/observability");
const need = (bin: string) => {
  if (!existsSync(`/usr/bin/${bin}`)) throw new Error(`/usr/bin/${bin} is missing: apt-get install prometheus`);
  return `/usr/bin/${bin}`;
};

let dir: string;
let service: ServiceProcess;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "chat-prometheus-"));
  service = await startService("the service", { DB_URI: `pglite://${join(dir, "data")}`, LOG_LEVEL: "warn" });
});
afterAll(async () => {
  await service?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Metric names (without _bucket/_sum/_count) named in `text`. */
const namesIn = (text: string) =>
  new Set([...text.matchAll(/\b((?:chat|process|nodejs)_[a-z_]+|target_info)\b/g)].map((m) => base(m[1] as string)));
const base = (name: string) => name.replace(/_(bucket|sum|count)$/, "");

describe("deploy/observability", () => {
  it("has alert rules that promtool accepts and whose tests pass, and a valid Prometheus config", async () => {
    const promtool = need("promtool");
    await run(promtool, ["check", "rules", join(OBS, "alerts.yml")]);
    await run(promtool, ["test", "rules", "alerts.test.yml"], { cwd: OBS });
    await run(promtool, ["check", "config", join(OBS, "prometheus.yml")]);
  });

  it("names only documented metrics, and every metric served is documented", async () => {
    const doc = namesIn(await readFile(join(ROOT, "docs/metrics.md"), "utf8"));
    const scrape = await (await fetch(`${service.httpUrl}/metrics`)).text();
    const served = new Set(
      scrape
        .split("\n")
        .filter((l) => l && !l.startsWith("#"))
        .map((l) => base(l.split(/[{ ]/)[0] as string)),
    );
    const referenced = [
      ...namesIn(await readFile(join(OBS, "alerts.yml"), "utf8")),
      ...namesIn(await readFile(join(OBS, "dashboard.json"), "utf8")),
    ];
    expect([...served].filter((n) => !doc.has(n))).toEqual([]);
    expect(referenced.filter((n) => !doc.has(n))).toEqual([]);
    // The dashboard is valid JSON with a query per panel.
    const dashboard = JSON.parse(await readFile(join(OBS, "dashboard.json"), "utf8"));
    expect(dashboard.panels.length).toBeGreaterThan(10);
    for (const p of dashboard.panels) expect(p.targets.length).toBeGreaterThan(0);
  });

  it("serves a scrape that promtool accepts, and a real Prometheus scrapes it and answers a query", async () => {
    const promtool = need("promtool");
    const prometheus = need("prometheus");
    const scrape = await (await fetch(`${service.httpUrl}/metrics`)).text();
    const check = spawn(promtool, ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
    let problems = "";
    check.stdout.on("data", (d) => (problems += d));
    check.stderr.on("data", (d) => (problems += d));
    check.stdin.end(scrape);
    const code = await new Promise((resolve) => check.on("exit", resolve));
    expect(problems).toBe("");
    expect(code).toBe(0);

    const port = await freePort();
    const target = new URL(service.httpUrl).host;
    await writeFile(
      join(dir, "prometheus.yml"),
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: chat\n    static_configs:\n      - targets: ["${target}"]\n`,
    );
    const prom = spawn(
      prometheus,
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: "ignore" },
    );
    try {
      const query = async (q: string) => {
        const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
        const body = (await res.json()) as {
          data: { result: { metric: Record<string, string>; value: [number, string] }[] };
        };
        return body.data.result;
      };
      const [pool] = await until("Prometheus to have scraped the database pool gauge", async () => {
        const r = await query('chat_db_pool_connections{state="idle"}');
        return r.length > 0 && r;
      });
      expect(pool?.metric).toMatchObject({ service_name: "chat", job: "chat" });
      expect(pool?.metric.service_instance_id).toBeTruthy();
      const up = await query("up");
      expect(up[0]?.value[1]).toBe("1");
    } finally {
      prom.kill();
    }
  });
});
