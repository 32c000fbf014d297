import { execFile, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  type FreshDatabase,
  freshDatabase,
  type Issuer,
  type ServiceProcess,
  startIssuer,
  startService,
} from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseObjects, type K8sObject, KUBERNETES, parseObjects, validateObject } from "../kubernetes.js";

// The manifests as a cluster would get them (`kubectl kustomize`, base and production overlay),
// checked against the Kubernetes API schemas; then each Deployment's roles started as processes
// with the ConfigMap's settings, answering the probes' paths on the probes' port.

const run = promisify(execFile);
const KUBECTL = spawnSync("kubectl", ["version", "--client"]).status === 0;
const scratch = mkdtempSync(join(tmpdir(), "chat-k8s-"));

async function render(dir: string): Promise<K8sObject[]> {
  const { stdout } = await run("kubectl", ["kustomize", dir], { maxBuffer: 16 * 1024 * 1024 });
  return parseObjects(stdout);
}

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.skipIf(!KUBECTL)("deploy/kubernetes rendered by kustomize (kubectl kustomize)", () => {
  let production: K8sObject[];
  beforeAll(async () => {
    cpSync(KUBERNETES, join(scratch, "kubernetes"), { recursive: true });
    // What an operator writes from the secret store before applying; never committed.
    writeFileSync(
      join(scratch, "kubernetes/overlays/production/secrets.env"),
      "DB_URI=postgresql://chat:s3cret@db.internal:5432/chat\n",
    );
    production = await render(join(scratch, "kubernetes/overlays/production"));
  });

  it("the base renders, and every object matches its schema", async () => {
    const objects = await render(join(KUBERNETES, "base"));
    expect(objects.length).toBe(baseObjects().length);
    for (const o of objects) expect(() => validateObject(o), `${o.kind} ${o.metadata.name}`).not.toThrow();
  });

  it("the production overlay renders valid objects: namespace, pinned image, replicas, TLS, the Secret", () => {
    for (const o of production) expect(() => validateObject(o), `${o.kind} ${o.metadata.name}`).not.toThrow();
    for (const o of production.filter((x) => x.kind !== "Namespace")) expect(o.metadata.namespace).toBe("service-chat");
    const secret = production.find((o) => o.kind === "Secret")!;
    expect(Buffer.from(secret.data?.DB_URI ?? "", "base64").toString()).toContain("db.internal");
    for (const d of production.filter((o) => o.kind === "Deployment")) {
      const c = d.spec.template.spec.containers[0];
      expect(c.image).toBe("registry.example.com/service-chat:0.1.0");
      expect(c.envFrom.map((f: any) => f.secretRef?.name).filter(Boolean)).toEqual([secret.metadata.name]);
    }
    const replicas = Object.fromEntries(
      production.filter((o) => o.kind === "Deployment").map((d) => [d.metadata.name, d.spec.replicas]),
    );
    expect(replicas).toEqual({ "default-api": 3, "default-pipeline": 2, gateway: 3 });
    for (const i of production.filter((o) => o.kind === "Ingress"))
      expect(i.spec.tls[0].secretName).toBe("service-chat-tls");
  });
});

describe("the probes, asked of each Deployment's roles running with the ConfigMap's settings", () => {
  const deployments = baseObjects().filter((o) => o.kind === "Deployment");
  const config = baseObjects().find((o) => o.kind === "ConfigMap")?.data ?? {};
  const procs: ServiceProcess[] = [];
  let db: FreshDatabase;
  let issuer: Issuer;

  beforeAll(async () => {
    db = await freshDatabase("postgres");
    issuer = await startIssuer(config.OAUTH2_JWT_VERIFY_AUDIENCE ?? "");
  });
  afterAll(async () => {
    for (const p of procs) await p.stop();
    await issuer?.close();
    await db?.drop();
  });

  it("answers /healthz and /readyz, as the probes ask them, in every role", async () => {
    const roleOf = (d: K8sObject) =>
      d.spec.template.spec.containers[0].env.find((e: any) => e.name === "SERVICES").value;
    // The API first: the gateways forward to it, by host:port as the ConfigMap writes CHAT_SERVICE_URI.
    const ordered = [...deployments].sort((a, b) => Number(roleOf(b) === "api") - Number(roleOf(a) === "api"));
    let api: ServiceProcess | undefined;
    for (const d of ordered) {
      const env = {
        ...config,
        SERVICES: roleOf(d),
        BIND_HOST: "127.0.0.1",
        DB_URI: db.uri,
        // In-process queue and registry: the probes ask each process about itself, and nothing is left behind.
        QUEUE_USER_EVENT_DELIVERY_URI: "mem://",
        CACHE_URI: "mem://",
        OAUTH2_ISSUER: issuer.url,
        CHAT_SERVICE_URI: api ? new URL(api.grpcUrl).host : "127.0.0.1:1",
      };
      const proc = await startService(d.metadata.name, env);
      procs.push(proc);
      if (roleOf(d) === "api") api = proc;
      const c = d.spec.template.spec.containers[0];
      for (const probe of [c.startupProbe, c.livenessProbe, c.readinessProbe]) {
        expect(probe.httpGet.port).toBe("http");
        const res = await fetch(`${proc.httpUrl}${probe.httpGet.path}`);
        expect(res.status, `${d.metadata.name} ${probe.httpGet.path}`).toBe(200);
      }
    }
    expect(procs.length).toBe(deployments.length);
  });
});
