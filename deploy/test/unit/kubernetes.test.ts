import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../apps/default/src/config.js";
import { baseObjects, type K8sObject, validateObject } from "../kubernetes.js";

// deploy/kubernetes/base, file by file, against the Kubernetes API schemas and against what the
// service needs. deploy/test/e2e/kubernetes.test.ts renders the overlays (kustomize) and asks a
// running service the probes' paths.

const objects = baseObjects();
const ofKind = (kind: string) => objects.filter((o) => o.kind === kind);
const deployments = ofKind("Deployment");
const container = (d: K8sObject) => d.spec.template.spec.containers[0];
const env = (d: K8sObject, name: string) =>
  (container(d).env as { name: string; value: string }[]).find((e) => e.name === name)?.value;
const config = ofKind("ConfigMap").find((c) => c.metadata.name === "service-chat-config")!;

describe("deploy/kubernetes/base", () => {
  it("every object matches the Kubernetes API schema of its kind", () => {
    expect(objects.length).toBeGreaterThan(10);
    for (const o of objects) expect(() => validateObject(o), `${o.kind} ${o.metadata.name}`).not.toThrow();
  });

  it("the schema check does catch mistakes (so the check above can fail)", () => {
    const broken = structuredClone(deployments[0]!);
    container(broken).ports[0].containerPort = "seven thousand";
    expect(() => validateObject(broken)).toThrow(/containerPort/);
    expect(() => validateObject({ ...broken, kind: "Deploymint" })).toThrow();
  });

  it("runs every role: api, relay and fanout in Default Service Deployments, and gateways", () => {
    const roles = deployments.flatMap((d) => (env(d, "SERVICES") ?? "").split(","));
    expect(roles.sort()).toEqual(["api", "fanout", "gateway", "relay"]);
  });

  it("gives each Deployment an environment the service accepts (ConfigMap + roles + the Secret's DB_URI)", () => {
    for (const d of deployments) {
      const from = container(d).envFrom as { configMapRef?: { name: string }; secretRef?: { name: string } }[];
      expect(from.map((f) => f.configMapRef?.name ?? f.secretRef?.name)).toEqual([
        "service-chat-config",
        "service-chat-secrets",
      ]);
      const c = loadConfig({
        ...config.data,
        SERVICES: env(d, "SERVICES"),
        DB_URI: "postgresql://chat:x@db:5432/chat",
      });
      expect(c.BIND_HOST).toBe("0.0.0.0");
    }
    for (const key of Object.keys(config.data ?? {})) expect(key).not.toMatch(/SECRET|PASSWORD|DB_URI/);
  });

  it("probes /healthz (startup, liveness) and /readyz (readiness) on the HTTP port the service listens on", () => {
    for (const d of deployments) {
      const c = container(d);
      const http = (c.ports as { name: string; containerPort: number }[]).find((p) => p.name === "http");
      expect(http?.containerPort).toBe(Number(config.data?.HTTP_PORT));
      expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
      expect(c.startupProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
      expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    }
  });

  it("sets requests and a memory limit, and runs as a non-root user with a read-only root", () => {
    for (const d of deployments) {
      const c = container(d);
      expect(c.resources.requests.cpu, d.metadata.name).toBeDefined();
      expect(c.resources.requests.memory, d.metadata.name).toBeDefined();
      expect(c.resources.limits.memory, d.metadata.name).toBeDefined();
      expect(d.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
      expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
      expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    }
  });

  it("gives gateways time to drain: grace period ≥ preStop + SHUTDOWN_GRACE_SEC + 5 s to stop", () => {
    const gateway = deployments.find((d) => env(d, "SERVICES") === "gateway")!;
    const preStop = Number(container(gateway).lifecycle.preStop.exec.command[1]);
    const drain = Number(config.data?.SHUTDOWN_GRACE_SEC);
    expect(drain).toBeGreaterThan(0);
    expect(gateway.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + drain + 5);
  });

  it("has a PodDisruptionBudget per Deployment and Services that select real pods", () => {
    const labels = (d: K8sObject) => d.spec.template.metadata.labels as Record<string, string>;
    const selects = (selector: Record<string, string>, d: K8sObject) =>
      Object.entries(selector).every(([k, v]) => labels(d)[k] === v);
    for (const d of deployments) {
      expect(
        ofKind("PodDisruptionBudget").some((p) => selects(p.spec.selector.matchLabels, d)),
        d.metadata.name,
      ).toBe(true);
    }
    for (const s of ofKind("Service")) {
      const target = deployments.find((d) => selects(s.spec.selector, d));
      expect(target, s.metadata.name).toBeDefined();
      const ports = (container(target!).ports as { name: string }[]).map((p) => p.name);
      for (const p of s.spec.ports as { targetPort: string }[]) expect(ports).toContain(p.targetPort);
    }
  });

  it("routes the Ingresses to the gateway Service: HTTP/1.1 (WebSocket) and gRPC over h2c", () => {
    const services = ofKind("Service");
    const ingresses = ofKind("Ingress");
    const backends = ingresses.flatMap((i) =>
      (i.spec.rules as any[]).flatMap((r) => r.http.paths.map((p: any) => p.backend.service)),
    );
    expect(backends).toEqual([
      { name: "gateway", port: { name: "http" } },
      { name: "gateway", port: { name: "grpc" } },
    ]);
    for (const b of backends) {
      const svc = services.find((s) => s.metadata.name === b.name);
      expect(((svc?.spec.ports ?? []) as { name: string }[]).map((p) => p.name)).toContain(b.port.name);
    }
    const grpc = ingresses.find((i) => i.metadata.name === "gateway-grpc")!;
    expect(grpc.metadata.annotations?.["nginx.ingress.kubernetes.io/backend-protocol"]).toBe("GRPC");
    for (const i of ingresses) {
      expect(Number(i.metadata.annotations?.["nginx.ingress.kubernetes.io/proxy-read-timeout"])).toBeGreaterThan(600);
    }
  });

  it("autoscales gateways on connections per pod (and CPU)", () => {
    const hpa = ofKind("HorizontalPodAutoscaler")[0]!;
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: "gateway" });
    const pods = (hpa.spec.metrics as any[]).find((m) => m.type === "Pods");
    expect(pods.pods.metric.name).toMatch(/connections/);
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
  });
});
