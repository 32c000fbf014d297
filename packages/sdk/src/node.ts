import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { ChatStore, ClientState } from "./store.js";

/** Keeps the state in a JSON file (written atomically), for Node programs that restart. */
export function fileStore(path: string): ChatStore {
  return {
    async load() {
      const raw = await readFile(path, "utf8").catch(() => undefined);
      return raw ? (JSON.parse(raw) as ClientState) : undefined;
    },
    async save(state) {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(`${path}.tmp`, JSON.stringify(state));
      await rename(`${path}.tmp`, path);
    },
  };
}
