/**
 * Prints where a V8 CPU profile (`--cpu-prof`, e.g. from `npm run bench -- --cpu-prof`) spent
 * its time: the functions with the most self time, and the files with the most self time.
 * Usage: npx tsx bench/cpuprofile-top.ts FILE.cpuprofile [count] [--from=S] [--to=S]
 * --from/--to: only the samples taken that many seconds after the profile began (a window of a
 * long run, such as the idle hold between connecting and the room step).
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

const flags = process.argv.slice(2).filter((a) => a.startsWith("--"));
const [file, countArg] = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const seconds = (name: string) => {
  const f = flags.find((a) => a.startsWith(`--${name}=`));
  return f === undefined ? undefined : Number(f.slice(name.length + 3)) * 1e6;
};
const from = seconds("from") ?? 0;
const to = seconds("to") ?? Number.POSITIVE_INFINITY;
if (!file) {
  console.error("usage: tsx bench/cpuprofile-top.ts FILE.cpuprofile [count] [--from=S] [--to=S]");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, "utf8")) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
};
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
let at = 0;
profile.samples.forEach((id, i) => {
  at += profile.timeDeltas[i] ?? 0;
  if (at >= from && at < to) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);
const idle = [...self]
  .filter(([id]) => /\((idle|program|garbage collector)\)/.test(byId.get(id)?.callFrame.functionName ?? ""))
  .reduce((a, [, t]) => a + t, 0);

const short = (url: string) =>
  url
    .replace(/^file:\/\//, "")
    .replace(/^.*node_modules\//, "")
    .replace(/^.*\/work\/main\//, "");
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
for (const [id, t] of self) {
  const f = byId.get(id)?.callFrame;
  if (!f) continue;
  const key = `${f.functionName || "(anonymous)"} ${short(f.url)}:${f.lineNumber + 1}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + t);
  const pkg = short(f.url).split("/").slice(0, 2).join("/") || f.functionName;
  byFile.set(pkg, (byFile.get(pkg) ?? 0) + t);
}
const show = (title: string, m: Map<string, number>, n: number) => {
  console.log(`\n${title}`);
  for (const [k, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    console.log(`${((t / total) * 100).toFixed(1).padStart(5)} %  ${(t / 1000).toFixed(0).padStart(7)} ms  ${k}`);
  }
};
console.log(
  `${file}: ${(total / 1e6).toFixed(1)} s sampled${from || to < Number.POSITIVE_INFINITY ? ` from ${from / 1e6} s to ${to / 1e6} s` : ""}, ${((idle / total) * 100).toFixed(0)} % idle/program/GC`,
);
// Inclusive time of the project's own functions (apps/, packages/): what each call tree costs.
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const inclusive = new Map<string, number>();
for (const [id, t] of self) {
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const f = byId.get(at)?.callFrame;
    if (!f || !/\/(apps|packages)\//.test(f.url) || f.url.includes("node_modules")) continue;
    const key = `${f.functionName || "(anonymous)"} ${short(f.url)}:${f.lineNumber + 1}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + t);
  }
}
show("self time by function", byFunction, Number(countArg ?? 25));
show("self time by package or folder", byFile, 15);
show("inclusive time of the project's functions", inclusive, Number(countArg ?? 25));
