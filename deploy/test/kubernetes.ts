import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parseAllDocuments } from "yaml";
import { REPO } from "./dockerfile.js";

export const KUBERNETES = `${REPO}deploy/kubernetes`;

// Kubernetes objects are checked with kubernetes-models: the Kubernetes API's own OpenAPI schemas,
// compiled to validators, one class per kind (`new Deployment(obj).validate()` throws naming the field).

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
}

const load = createRequire(import.meta.url);

/** Throws when `obj` does not match its kind's schema (or its kind is unknown). */
export function validateObject(obj: K8sObject): void {
  const group = obj.apiVersion.includes("/") ? obj.apiVersion : `v1`;
  const mod = load(`kubernetes-models/${group}/${obj.kind}`) as Record<
    string,
    new (
      o: unknown,
    ) => { validate(): void }
  >;
  const Model = mod[obj.kind];
  if (!Model) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
}

/** Every object in a multi-document YAML text. */
export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/** The base's resources, as its kustomization.yaml lists them. */
export function baseObjects(): K8sObject[] {
  const dir = `${KUBERNETES}/base`;
  const kustomization = parseObjects(readFileSync(`${dir}/kustomization.yaml`, "utf8"))[0] as unknown as {
    resources: string[];
  };
  const listed = kustomization.resources;
  const present = readdirSync(dir).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml");
  if (present.sort().join() !== [...listed].sort().join()) {
    throw new Error(`base/kustomization.yaml lists ${listed.join(", ")} but the folder has ${present.join(", ")}`);
  }
  return listed.flatMap((f) => parseObjects(readFileSync(`${dir}/${f}`, "utf8")));
}
