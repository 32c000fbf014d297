/**
 * Preloaded (`--import`) into every server and baseline process the benchmark starts (plain
 * JavaScript, so that the compiled servers need no TypeScript loader): answers
 * "memory" over the IPC channel with the process's memory after full garbage collections,
 * "heap-snapshot" by writing a V8 heap snapshot to the file it is given, and
 * ends the process when the benchmark that started it goes away.
 */
import { writeHeapSnapshot } from "node:v8";

const gc = globalThis.gc;

if (process.send) {
  process.on("message", (m) => {
    if (m?.cmd === "heap-snapshot" && typeof m.call === "number") {
      gc?.();
      process.send?.({ reply: m.call, result: writeHeapSnapshot(m.args?.file) });
      return;
    }
    if (m?.cmd !== "memory" || typeof m.call !== "number") return;
    for (let i = 0; i < 4; i++) gc?.();
    const u = process.memoryUsage();
    process.send?.({
      reply: m.call,
      result: {
        rss: u.rss,
        heapUsed: u.heapUsed,
        heapTotal: u.heapTotal,
        external: u.external,
        arrayBuffers: u.arrayBuffers,
      },
    });
  });
  process.on("disconnect", () => process.kill(process.pid, "SIGTERM"));
  process.channel?.unref();
}
