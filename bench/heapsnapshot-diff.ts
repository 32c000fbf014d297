/**
 * What a process holds per connection (or per anything): two V8 heap snapshots of the same process
 * (e.g. `npm run bench -- --only=idle --idle-heap-snapshots`, which writes one per gateway at the
 * reference and at the top level), their objects' own sizes added up by kind — constructor name
 * for objects, function name for closures, the kind alone for strings and numbers — and the
 * difference divided by N.
 *
 *   npx tsx bench/heapsnapshot-diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot N [rows=30]
 *   npx tsx bench/heapsnapshot-diff.ts --who="object Map" AFTER.heapsnapshot [rows=30]
 *
 * With --who=KIND (a kind as the first form prints it): what holds the objects of that kind in
 * one snapshot, by the holder's kind and the name of the reference.
 *
 * Own (shallow) sizes, not retained: a connection's closures, objects, arrays and strings each
 * show as themselves, so the rows add up to the heap the N connections cost.
 */
import { readFileSync } from "node:fs";

interface Totals {
  bytes: number;
  count: number;
}

interface Snapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Kinds whose name is the object's content, not a class: grouped by kind alone. */
const CONTENT = new Set(["string", "concatenated string", "sliced string", "number", "bigint", "regexp"]);

const read = (file: string) => JSON.parse(readFileSync(file, "utf8")) as Snapshot;

/** The kind of each node, by its index in `nodes`. */
function kinds(snap: Snapshot): (i: number) => string {
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [typeAt, nameAt] = [fields.indexOf("type"), fields.indexOf("name")];
  const { nodes, strings } = snap;
  return (i) => {
    const type = types[nodes[i + typeAt] as number] as string;
    return CONTENT.has(type) ? `(${type})` : `${type} ${strings[nodes[i + nameAt] as number]?.slice(0, 60)}`;
  };
}

function byKind(snap: Snapshot): Map<string, Totals> {
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const sizeAt = fields.indexOf("self_size");
  const kindOf = kinds(snap);
  const out = new Map<string, Totals>();
  const { nodes } = snap;
  for (let i = 0; i < nodes.length; i += width) {
    const key = kindOf(i);
    const t = out.get(key) ?? { bytes: 0, count: 0 };
    t.bytes += nodes[i + sizeAt] as number;
    t.count++;
    out.set(key, t);
  }
  return out;
}

/** What references the nodes of kind `who`: counts by the holder's kind and the reference's name. */
function holders(snap: Snapshot, who: string): [string, number][] {
  const { meta } = snap.snapshot;
  const width = meta.node_fields.length;
  const countAt = meta.node_fields.indexOf("edge_count");
  const ew = meta.edge_fields.length;
  const [etypeAt, enameAt, toAt] = ["type", "name_or_index", "to_node"].map((f) => meta.edge_fields.indexOf(f)) as [
    number,
    number,
    number,
  ];
  const etypes = meta.edge_types[0];
  const kindOf = kinds(snap);
  const { nodes, edges, strings } = snap;
  const out = new Map<string, number>();
  let e = 0;
  for (let i = 0; i < nodes.length; i += width) {
    const end = e + (nodes[i + countAt] as number) * ew;
    for (; e < end; e += ew) {
      const to = edges[e + toAt] as number;
      const etype = etypes[edges[e + etypeAt] as number] as string;
      if (etype === "weak" || kindOf(to) !== who) continue;
      const name = etype === "element" || etype === "hidden" ? `[${etype}]` : strings[edges[e + enameAt] as number];
      const key = `${kindOf(i)} .${name}`;
      out.set(key, (out.get(key) ?? 0) + 1);
    }
  }
  return [...out].sort((a, b) => b[1] - a[1]);
}

const who = process.argv.find((a) => a.startsWith("--who="))?.slice(6);
if (who) {
  const [file, rows] = process.argv.slice(2).filter((a) => !a.startsWith("--who="));
  if (!file) throw new Error("--who=KIND needs a snapshot file");
  for (const [key, count] of holders(read(file), who).slice(0, Number(rows ?? 30))) {
    console.log(`${String(count).padStart(8)}  ${key}`);
  }
  process.exit(0);
}

const [beforeFile, afterFile, nArg, rowsArg] = process.argv.slice(2);
const n = Number(nArg);
if (!beforeFile || !afterFile || !(n > 0)) {
  console.error("usage: tsx bench/heapsnapshot-diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot N [rows]");
  process.exit(2);
}
const before = byKind(read(beforeFile));
const after = byKind(read(afterFile));
const rows = [...after]
  .map(([key, a]) => {
    const b = before.get(key) ?? { bytes: 0, count: 0 };
    return { key, bytes: (a.bytes - b.bytes) / n, count: (a.count - b.count) / n };
  })
  .sort((x, y) => Math.abs(y.bytes) - Math.abs(x.bytes));
const total = rows.reduce((s, r) => s + r.bytes, 0);
console.log(`per unit (÷ ${n}): ${total.toFixed(0)} bytes of heap in all\n`);
console.log(`${"bytes".padStart(8)} ${"objects".padStart(8)}  kind`);
for (const r of rows.slice(0, Number(rowsArg ?? 30))) {
  console.log(`${r.bytes.toFixed(1).padStart(8)} ${r.count.toFixed(2).padStart(8)}  ${r.key}`);
}
