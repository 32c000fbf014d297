import { defaultClientConditions, defineConfig, type Plugin } from "vite";

/**
 * Writes dist/.inputs.json: the source files the bundle was made of and when the build started,
 * so `scripts/ensure-built.mjs` can tell in a few milliseconds whether dist is current.
 */
function recordInputs(): Plugin {
  let root = "";
  let startedAt = 0;
  return {
    name: "record-inputs",
    apply: "build",
    configResolved(config) {
      root = config.root;
    },
    buildStart() {
      startedAt = Date.now();
    },
    generateBundle() {
      const modules = [...this.getModuleIds()]
        .map((id) => id.split("?")[0] ?? id)
        .filter((id) => !id.startsWith("\0") && !id.includes("/node_modules/") && id.startsWith("/"));
      const files = [
        ...new Set([...modules, `${root}/index.html`, `${root}/vite.config.ts`, `${root}/../../package-lock.json`]),
      ];
      this.emitFile({ type: "asset", fileName: ".inputs.json", source: JSON.stringify({ startedAt, files }) });
    },
  };
}

/** `npm run dev -w @service-chat/web`: hot reloading on 5173, the API and stream of `npm start` behind it. */
const server = "http://127.0.0.1:7000";

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  // The workspace packages from their TypeScript sources (package.json "exports"), not their builds.
  resolve: { conditions: ["@service-chat/source", ...defaultClientConditions] },
  server: {
    proxy: {
      "/chat.v1.ChatService": server,
      "/dev/token": server,
      "/ws": { target: server, ws: true },
    },
  },
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", chunkSizeWarningLimit: 1000 },
  plugins: [recordInputs()],
});
