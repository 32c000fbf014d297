import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Copy, DockerfileParser, type Instruction } from "dockerfile-ast";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));
export const DOCKERFILE = readFileSync(`${REPO}Dockerfile`, "utf8");

export interface Step {
  keyword: string;
  /** Arguments as the parser splits them (quotes kept). */
  args: string[];
  /** Everything after the keyword, as written (line continuations joined). */
  text: string;
  /** COPY --from=STAGE. */
  from?: string;
}

export interface Stage {
  image: string;
  name?: string;
  steps: Step[];
}

/** The Dockerfile's stages, each with its instructions in order. */
export function stages(content = DOCKERFILE): Stage[] {
  const out: Stage[] = [];
  for (const i of DockerfileParser.parse(content).getInstructions() as Instruction[]) {
    const keyword = i.getKeyword();
    const args = i.getArguments().map((a) => a.getValue());
    if (keyword === "FROM") {
      out.push({ image: args[0] ?? "", ...(args[2] ? { name: args[2] } : {}), steps: [] });
      continue;
    }
    const from = keyword === "COPY" ? (i as Copy).getFromFlag()?.getValue() : undefined;
    const text = (i.getArgumentsContent() ?? "").replace(/\\\n\s*/g, " ").trim();
    out.at(-1)?.steps.push({ keyword, args, text, ...(from ? { from } : {}) });
  }
  return out;
}

/** An exec-form instruction's command (`CMD ["node", "x.js"]`), or undefined for the shell form. */
export function execForm(step: Step | undefined): string[] | undefined {
  const json = step?.text.replace(/^CMD\s+/, "");
  if (!json?.startsWith("[")) return undefined;
  return JSON.parse(json) as string[];
}

/** `KEY=value` pairs of the ENV instructions of a stage. */
export function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of stage.steps.filter((x) => x.keyword === "ENV")) {
    for (const pair of s.args) {
      const eq = pair.indexOf("=");
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}
