import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/**
 * The ports the kernel hands out on its own, to outgoing connections and to `listen(0)`. A port
 * picked there can be taken by any connection between the pick and the child's bind, so tests
 * pick below that range instead.
 */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (low !== undefined && high !== undefined && Number.isInteger(low) && Number.isInteger(high)) return [low, high];
  } catch {
    // Not Linux: the IANA dynamic range.
  }
  return [49152, 65535];
}

const [EPHEMERAL_LOW] = ephemeralRange();
/** Below the ephemeral range, above the well-known and most registered service ports. */
const PICK_LOW = 10_000;
const PICK_HIGH = EPHEMERAL_LOW > PICK_LOW + 1_000 ? EPHEMERAL_LOW - 1 : 65_535;

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/**
 * A TCP port nobody listens on right now (to start a server on, or to find nothing there): a random
 * one outside the kernel's ephemeral range, so no outgoing connection or `listen(0)` takes it before
 * the server that is meant to bind it does. Two picks racing for the same port are still possible
 * (rarely); `startService` starts again on fresh ports when that happens.
 */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 1_000; tries++) {
    const port = PICK_LOW + Math.floor(Math.random() * (PICK_HIGH - PICK_LOW + 1));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port found between ${PICK_LOW} and ${PICK_HIGH} on 127.0.0.1`);
}
