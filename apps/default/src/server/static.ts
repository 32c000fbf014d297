import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { extname, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

/** Where `npm run build:web` puts the web chat. */
export const WEB_DIST = fileURLToPath(new URL("../../../web/dist", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".webmanifest": "application/manifest+json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

/**
 * Serves the built web chat from `root`: `/` is index.html, `/assets/*` are content-hashed and
 * cached for a year, everything else is revalidated. Answers false for what it does not serve
 * (not GET or HEAD, outside `root`, hidden, missing), leaving the 404 to the caller.
 */
export function staticFiles(root = WEB_DIST) {
  const base = resolve(root);
  return async (req: Req, res: Res, path: string): Promise<boolean> => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    let name: string;
    try {
      name = decodeURIComponent(path === "/" ? "/index.html" : path);
    } catch {
      return false;
    }
    if (name.includes("\0") || name.split("/").some((part) => part.startsWith("."))) return false;
    const file = resolve(base, `.${name}`);
    if (!file.startsWith(base + sep)) return false;
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) {
      if (path !== "/") return false;
      text(res, 404, "The web chat is not built: run `npm run build:web` (npm start does it for you).\n");
      return true;
    }
    const immutable = name.startsWith("/assets/");
    const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    const headers = {
      "content-type": TYPES[extname(file).toLowerCase()] ?? "application/octet-stream",
      "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-cache",
      "x-content-type-options": "nosniff",
      etag,
    };
    const w = res as ServerResponse;
    if (req.headers["if-none-match"] === etag) {
      w.writeHead(304, headers);
      w.end();
      return true;
    }
    w.writeHead(200, { ...headers, "content-length": info.size });
    if (req.method === "HEAD") {
      w.end();
      return true;
    }
    await new Promise<void>((done) => {
      const stream = createReadStream(file);
      stream.once("error", () => {
        w.destroy();
        done();
      });
      w.once("close", () => {
        stream.destroy();
        done();
      });
      stream.pipe(w);
    });
    return true;
  };
}

function text(res: Res, status: number, body: string): void {
  (res as ServerResponse).writeHead(status, { "content-type": "text/plain; charset=utf-8" });
  (res as ServerResponse).end(body);
}
