import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadConfig } from "../../../apps/default/src/config.js";
import { envOf, REPO, stages } from "../dockerfile.js";

// docker-compose.yml as Docker Compose reads it (Debian's docker-compose, `config`), then held to
// the topology docs/deployment.md describes; every Service Chat container's environment must pass
// the service's own configuration check; the proxy's Caddyfile must pass `caddy validate`.

const run = promisify(execFile);
const SECRETS = { POSTGRES_PASSWORD: "from-the-environment", OAUTH2_ISSUER: "https://id.example.com" };

interface Service {
  image?: string;
  build?: unknown;
  environment?: Record<string, string | null>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: { published: number | string; target: number }[] | string[];
  volumes?: unknown[];
}

async function composeConfig(env: Record<string, string>): Promise<{ services: Record<string, Service> }> {
  const { stdout } = await run("docker-compose", ["config"], { cwd: REPO, env: { PATH: process.env.PATH, ...env } });
  return parse(stdout);
}

describe("docker-compose.yml", () => {
  it("is valid for docker-compose (config -q)", async () => {
    await run("docker-compose", ["config", "-q"], { cwd: REPO, env: { PATH: process.env.PATH, ...SECRETS } });
  });

  it("takes its secrets from the environment only, and says which is missing", async () => {
    const err = await run("docker-compose", ["config", "-q"], {
      cwd: REPO,
      env: { PATH: process.env.PATH, OAUTH2_ISSUER: SECRETS.OAUTH2_ISSUER },
    }).catch((e: { stderr: string }) => e);
    expect((err as { stderr: string }).stderr).toContain("set POSTGRES_PASSWORD");
    expect(readFileSync(`${REPO}docker-compose.yml`, "utf8")).not.toContain(SECRETS.POSTGRES_PASSWORD);
  });

  it("runs PostgreSQL, Redis, NATS with JetStream, two Default Services, two gateways and a proxy", async () => {
    const { services } = await composeConfig(SECRETS);
    const roles = (s: Service) => s.environment?.SERVICES;
    const apps = Object.entries(services).filter(([, s]) => s.environment?.SERVICES !== undefined);
    expect(apps.filter(([, s]) => roles(s) === "api,relay,fanout").length).toBe(2);
    expect(apps.filter(([, s]) => roles(s) === "gateway").length).toBe(2);
    expect(services.postgres?.image).toMatch(/^postgres:/);
    expect(services.redis?.image).toMatch(/^redis:/);
    expect(services.nats?.image).toMatch(/^nats:/);
    expect(JSON.stringify(services.nats)).toContain("-js");
    expect(services.proxy?.image).toMatch(/^caddy:/);
    // Only the proxy is reachable from outside.
    for (const [name, s] of Object.entries(services)) if (name !== "proxy") expect(s.ports, name).toBeUndefined();
    for (const name of ["postgres", "redis", "nats"]) expect(services[name]?.volumes?.length, name).toBeGreaterThan(0);
  });

  it("starts in order of health: each dependency has a healthcheck and is waited for", async () => {
    const { services } = await composeConfig(SECRETS);
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, how] of Object.entries(s.depends_on ?? {})) {
        expect(how.condition, `${name} → ${dep}`).toBe("service_healthy");
        // The Service Chat image brings its own HEALTHCHECK (the Dockerfile's).
        expect(services[dep]?.healthcheck ?? services[dep]?.build, `${dep} has a healthcheck`).toBeDefined();
      }
    }
    expect(Object.keys(services.proxy?.depends_on ?? {}).sort()).toEqual(["gateway-1", "gateway-2"]);
  });

  it("gives every Service Chat container an environment the service accepts (the original values included)", async () => {
    const { services } = await composeConfig(SECRETS);
    const image = envOf(stages().at(-1)!);
    for (const [name, s] of Object.entries(services)) {
      if (s.environment?.SERVICES === undefined) continue;
      const env = { ...image, ...s.environment } as Record<string, string>;
      const config = loadConfig(env);
      expect(config.BIND_HOST, name).toBe("0.0.0.0");
      expect(config.QUEUE_USER_EVENT_DELIVERY_NAME).toBe("user.event.delivery");
      if (env.SERVICES === "gateway") expect(config.CHAT_SERVICE_URI).toBe("http://default-service:7010");
    }
  });

  it("puts a valid Caddyfile in front of both gateways' HTTP and h2c ports", async () => {
    const caddyfile = `${REPO}deploy/compose/Caddyfile`;
    const { stdout, stderr } = await run("caddy", ["validate", "--adapter", "caddyfile", "--config", caddyfile]);
    expect(stdout + stderr).toContain("Valid configuration");
    const text = readFileSync(caddyfile, "utf8");
    const image = envOf(stages().at(-1)!);
    for (const gw of ["gateway-1", "gateway-2"]) {
      expect(text).toContain(`${gw}:${image.HTTP_PORT}`);
      expect(text).toContain(`h2c://${gw}:${image.GRPC_PORT}`);
    }
  });
});
