import { defineConfig } from "vitest/config";

/**
 * The same suite runs twice: on the embedded PGlite and on the PostgreSQL server (each test file
 * in a fresh database of its own). TEST_POSTGRES_URI points at the server; it defaults to the
 * local one with trust auth.
 */
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: "unit", include: ["packages/*/test/**/*.test.ts", "apps/*/test/unit/**/*.test.ts"] },
      },
      {
        extends: true,
        test: {
          name: "pglite",
          include: ["apps/*/test/**/*.test.ts"],
          exclude: ["apps/*/test/unit/**"],
          env: { TEST_DB: "pglite" },
        },
      },
      {
        extends: true,
        test: {
          name: "postgres",
          include: ["apps/*/test/**/*.test.ts"],
          exclude: ["apps/*/test/unit/**"],
          env: { TEST_DB: "postgres" },
        },
      },
    ],
  },
});
