import { type PGlite, parse, protocol } from "@electric-sql/pglite";

/** Named statements kept per connection; the least recently used one is closed beyond this. */
const CACHED = 256;

interface Prepared {
  name: string;
  /** The type of each parameter, as the server inferred it (it picks each value's serializer). */
  paramTypes: number[];
}

/**
 * Runs parameterised statements on PGlite as named prepared statements: each distinct SQL text is
 * parsed and described once, then each run is one Bind, Describe, Execute and Sync in a single
 * call into PGlite. PGlite's own `query` parses and describes the text every time, in five calls
 * into its WebAssembly server; parsing, analysing and (once PostgreSQL settles on a generic plan)
 * planning the send path's statements was most of their cost. Callers must run one statement at a
 * time (the pool does).
 */
export function preparedStatements(pg: PGlite) {
  const cache = new Map<string, Prepared>();
  let next = 0;
  /** Close messages of statements dropped from the cache, sent with the next statement. */
  let closing: Uint8Array[] = [];

  async function prepare(text: string): Promise<Prepared> {
    const name = `s${next++}`;
    const { messages } = await pg.execProtocol(
      join([
        ...closing,
        protocol.serialize.parse({ name, text }),
        protocol.serialize.describe({ type: "S", name }),
        protocol.serialize.sync(),
      ]),
      { syncToFs: false },
    );
    closing = [];
    const described = messages.find((m) => m.name === "parameterDescription") as { dataTypeIDs?: number[] } | undefined;
    const prepared = { name, paramTypes: described?.dataTypeIDs ?? [] };
    cache.set(text, prepared);
    if (cache.size > CACHED) {
      const [oldest, dropped] = cache.entries().next().value as [string, Prepared];
      cache.delete(oldest);
      closing.push(protocol.serialize.close({ type: "S", name: dropped.name }));
    }
    return prepared;
  }

  return async function query<R>(text: string, params: readonly unknown[]) {
    let prepared = cache.get(text);
    if (prepared) {
      // Most recently used last: Map keeps insertion order.
      cache.delete(text);
      cache.set(text, prepared);
    } else {
      prepared = await prepare(text);
    }
    const values = params.map((v, i) => {
      if (v === null || v === undefined) return null;
      const serialize = pg.serializers[prepared.paramTypes[i] ?? 0];
      return serialize ? serialize(v) : String(v);
    });
    const { messages } = await pg.execProtocol(
      join([
        protocol.serialize.bind({ statement: prepared.name, values }),
        protocol.serialize.describe({ type: "P" }),
        protocol.serialize.execute({}),
        protocol.serialize.sync(),
      ]),
    );
    const [result] = parse.parseResults(messages, pg.parsers);
    return { rows: (result?.rows ?? []) as R[], affectedRows: result?.affectedRows ?? 0 };
  };
}

function join(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
