import { rehearse } from "./rehearse.js";

// `npm run rehearse`: builds, then plays docker-compose.yml's topology (deploy/rehearsal/rehearse.ts).
try {
  await rehearse((line) => console.log(`rehearsal: ${line}`));
  console.log("rehearsal: passed");
} catch (err) {
  console.error(`rehearsal: failed: ${(err as Error).message}`);
  process.exitCode = 1;
}
