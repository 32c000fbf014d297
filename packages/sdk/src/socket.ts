/** The WebSocket of the browser, or of the `ws` package on Node versions that have none. */
export interface Socket {
  binaryType: string;
  readyState: number;
  send(data: Uint8Array | string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "close" | "error" | "message", listener: (ev: any) => void): void;
}

type SocketClass = new (url: string, protocols?: string[]) => Socket;

let cached: SocketClass | undefined;

export async function socketClass(): Promise<SocketClass> {
  if (cached) return cached;
  const native = (globalThis as { WebSocket?: SocketClass }).WebSocket;
  if (native) {
    cached = native;
    return native;
  }
  const name = "ws";
  const mod = (await import(/* @vite-ignore */ name)) as { default: SocketClass };
  cached = mod.default;
  return cached;
}

export const OPEN = 1;
