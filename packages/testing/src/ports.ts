import { type AddressInfo, createServer } from "node:net";

/** A TCP port nobody listens on right now (to start a server on, or to find nothing there). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}
