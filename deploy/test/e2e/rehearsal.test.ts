import { describe, expect, it } from "vitest";
import { rehearse } from "../../rehearsal/rehearse.js";

// The deployment rehearsal in the test run (`npm run rehearse` by hand): docker-compose.yml's
// topology from the build output, one network namespace per service (deploy/rehearsal/).
// Network namespaces need root, as CI has.

describe.skipIf(process.getuid?.() !== 0)("the deployment rehearsal", () => {
  it("runs the Compose topology: devices on both gateways, one stopped, its devices resume on the other", async () => {
    const lines: string[] = [];
    await rehearse((line) => lines.push(line));
    expect(lines).toContain("a message sent on gateway-1 reached a device on gateway-2");
    expect(lines).toContain("gRPC over h2c through the proxy answers (GetHistory via a gateway)");
    expect(lines).toContain("its devices resumed on gateway-2: every message once, in order");
    expect(lines.at(-1)).toBe("/readyz: every running Service Chat process and the proxy answer 200");
  });
});
