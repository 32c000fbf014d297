/**
 * Source addresses for the device processes' sockets: fresh ones for every call in a run, and a
 * run's own block of loopback addresses (127.B.x.y, B picked at random per run).
 *
 * A device socket bound to a source address gets its port at bind, before the kernel knows where
 * it will connect, so the port must be unused on that address by every socket, including those in
 * TIME_WAIT (60 s after each close). Reusing an address that the previous target's or run's
 * devices just closed 10,000 sockets on made the next connects slow and very uneven: the same
 * 10,000 devices took 8 s on clean addresses and 14–19 s right after a run.
 */
const block = 1 + Math.floor(Math.random() * 254);
/** Sockets per address at most, of the ~28,000 ephemeral ports each has. */
const SOCKETS_PER_ADDRESS = 10_000;
let next = 0;

/** Fresh source addresses enough for `sockets` sockets (at least one). */
export function sourceAddresses(sockets: number): string[] {
  const n = Math.max(1, Math.ceil(sockets / SOCKETS_PER_ADDRESS));
  return Array.from({ length: n }, () => {
    const k = next++;
    return `127.${block}.${Math.floor(k / 254) % 256}.${(k % 254) + 1}`;
  });
}
