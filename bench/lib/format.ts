import { fmt } from "./svg.js";

/** Cell formats of the Markdown report. */

export const ms = (x: number | undefined) =>
  x === undefined || !Number.isFinite(x) ? "–" : x < 10 ? x.toFixed(1) : fmt(x);
export const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? Number.NaN : a / b;
export const times = (r: number) => (Number.isFinite(r) ? `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×` : "–");
export const pct = (r: number) => (Number.isFinite(r) ? `${(r * 100).toFixed(r >= 0.9995 && r < 1 ? 2 : 1)} %` : "–");
export const kb = (b: number) => (Number.isFinite(b) ? `${(b / 1024).toFixed(1)} KiB` : "–");
export const mib = (b: number | undefined) =>
  b !== undefined && Number.isFinite(b) ? `${(b / 2 ** 20).toFixed(0)} MiB` : "–";
export const verdict = (ok: boolean | undefined) => (ok === undefined ? "–" : ok ? "met" : "**not met**");

export function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
    "",
  ].join("\n");
}
