import { defaultServerConditions } from "vite";
import { defineConfig } from "vitest/config";

/**
 * The test ladder (README, "Test it"):
 * - unit: needs no server of any kind. Its setup (packages/testing/src/no-servers.ts) fails a test
 *   that opens a socket, listens, starts a process or opens a PGlite database.
 * - integration: the real PostgreSQL, NATS and Redis servers, and the app in this process over
 *   real sockets. The apps' tests run twice, on the embedded PGlite and on the PostgreSQL server
 *   (each test file in a fresh database; TEST_POSTGRES_URI names the server); the packages' once.
 * - e2e: service processes, a cluster, the CLI, the browser; once.
 *
 * Timeouts are generous: on a loaded machine a test waits longer, it does not fail. `until`
 * (packages/testing) gives up sooner than a test does, so a stuck wait says what it waited for.
 */
const appsIntegration = ["apps/*/test/integration/**/*.test.ts"];

/**
 * The workspace packages from their TypeScript sources (package.json "exports"), not their builds;
 * otherwise vitest's own server conditions (Vite's without "module").
 */
const conditions = ["@service-chat/source", ...defaultServerConditions.filter((c) => c !== "module")];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    expect: { poll: { timeout: 60_000 } },
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: [
            "packages/*/test/unit/**/*.test.ts",
            "apps/*/test/unit/**/*.test.ts",
            "deploy/test/unit/**/*.test.ts",
          ],
          setupFiles: ["packages/testing/src/no-servers.ts"],
        },
      },
      { extends: true, test: { name: "integration", include: ["packages/*/test/integration/**/*.test.ts"] } },
      {
        extends: true,
        test: { name: "integration-pglite", include: appsIntegration, env: { TEST_DB: "pglite" } },
      },
      {
        extends: true,
        test: { name: "integration-postgres", include: appsIntegration, env: { TEST_DB: "postgres" } },
      },
      {
        extends: true,
        test: {
          name: "e2e",
          include: ["packages/*/test/e2e/**/*.test.ts", "apps/*/test/e2e/**/*.test.ts", "deploy/test/e2e/**/*.test.ts"],
          globalSetup: ["packages/testing/src/build.ts"],
        },
      },
    ],
  },
});
