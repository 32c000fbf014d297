import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { AppError } from "@service-chat/core";

/** The largest file the development store takes. */
export const DEV_UPLOAD_MAX_BYTES = 25 * 1024 * 1024;
const PREFIX = "/dev/uploads";
const ID = /^[0-9a-f]{32}$/;
/** Shown inline (as images); everything else is served as a download. SVG is not: it can carry script. */
const INLINE = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

interface Meta {
  filename: string;
  mimeType: string;
  sizeBytes: number;
  owner: string;
  done: boolean;
}

/**
 * A simple local store for attachments, for development (`npm start` with development tokens):
 * `POST /dev/uploads` (authenticated, JSON `{filename, mimeType, sizeBytes}`) answers
 * `{uploadUrl, uri}`; one `PUT` of the bytes to `uploadUrl`; `GET uri` serves them. Files live in
 * `dir`, named by a random id that only the uploader learns. A deployment points
 * `UPLOAD_ENDPOINT` at its own service (object storage with signed URLs) instead.
 */
export function devUploads(dir: string, verify: (token: string) => Promise<{ profileId: string }>) {
  const metaPath = (id: string) => join(dir, `${id}.json`);
  const dataPath = (id: string) => join(dir, `${id}.bin`);

  async function create(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    if (!token) throw new AppError("unauthenticated", "an upload needs Authorization: Bearer <token>");
    const who = await verify(token);
    const input = parse(body);
    const id = randomBytes(16).toString("hex");
    await mkdir(dir, { recursive: true });
    const meta: Meta = { ...input, owner: who.profileId, done: false };
    await writeFile(metaPath(id), JSON.stringify(meta));
    const origin = `http://${req.headers.host ?? "127.0.0.1"}`;
    const name = encodeURIComponent(input.filename);
    send(res, 200, { uploadUrl: `${PREFIX}/${id}`, uri: `${origin}${PREFIX}/${id}/${name}` });
  }

  async function put(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const meta = await readMeta(id);
    if (!meta) return send(res, 404, { error: "no such upload" });
    if (meta.done) return send(res, 409, { error: "this upload has its bytes already" });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > Math.min(meta.sizeBytes, DEV_UPLOAD_MAX_BYTES)) {
        return send(res, 413, { error: `larger than the ${meta.sizeBytes} bytes announced` });
      }
      chunks.push(chunk);
    }
    await writeFile(`${dataPath(id)}.tmp`, Buffer.concat(chunks));
    await rename(`${dataPath(id)}.tmp`, dataPath(id));
    await writeFile(metaPath(id), JSON.stringify({ ...meta, sizeBytes: size, done: true }));
    send(res, 201, { sizeBytes: size });
  }

  async function get(res: ServerResponse, id: string): Promise<void> {
    const meta = await readMeta(id);
    const found = meta?.done ? await stat(dataPath(id)).catch(() => undefined) : undefined;
    if (!meta || !found) return send(res, 404, { error: "no such file" });
    const inline = INLINE.has(meta.mimeType);
    res.writeHead(200, {
      "content-type": inline ? meta.mimeType : "application/octet-stream",
      "content-length": found.size,
      "content-disposition": `${inline ? "inline" : "attachment"}; filename*=UTF-8''${encodeURIComponent(meta.filename)}`,
      "x-content-type-options": "nosniff",
      "content-security-policy": "default-src 'none'; sandbox",
      "cache-control": "private, max-age=86400, immutable",
    });
    createReadStream(dataPath(id)).pipe(res);
  }

  async function readMeta(id: string): Promise<Meta | undefined> {
    if (!ID.test(id)) return undefined;
    const raw = await readFile(metaPath(id), "utf8").catch(() => undefined);
    return raw ? (JSON.parse(raw) as Meta) : undefined;
  }

  /** Handles the request if it is the store's; answers whether it was. */
  return async (req: IncomingMessage, res: ServerResponse, path: string, readBody: () => Promise<string>) => {
    if (path !== PREFIX && !path.startsWith(`${PREFIX}/`)) return false;
    const [, id] = path.slice(PREFIX.length).split("/");
    if (path === PREFIX && req.method === "POST") await create(req, res, await readBody());
    else if (id && req.method === "PUT") await put(req, res, id);
    else if (id && (req.method === "GET" || req.method === "HEAD")) await get(res, id);
    else send(res, 405, { error: "POST /dev/uploads, then PUT the bytes to uploadUrl, then GET uri" });
    return true;
  };
}

function parse(body: string): { filename: string; mimeType: string; sizeBytes: number } {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(body) as Record<string, unknown>;
  } catch {
    throw new AppError(
      "invalid_argument",
      'body must be JSON like {"filename":"a.png","mimeType":"image/png","sizeBytes":123}',
    );
  }
  const filename = v.filename;
  if (typeof filename !== "string" || !filename || filename.length > 255 || /[\u0000-\u001f/\\]/.test(filename)) {
    throw new AppError("invalid_argument", "filename must be 1-255 characters without slashes or control characters");
  }
  const mimeType = v.mimeType;
  if (typeof mimeType !== "string" || !/^[\w.+-]+\/[\w.+-]+$/.test(mimeType)) {
    throw new AppError("invalid_argument", "mimeType must be a media type like image/png");
  }
  const sizeBytes = v.sizeBytes;
  if (
    typeof sizeBytes !== "number" ||
    !Number.isInteger(sizeBytes) ||
    sizeBytes < 0 ||
    sizeBytes > DEV_UPLOAD_MAX_BYTES
  ) {
    throw new AppError("invalid_argument", `sizeBytes must be a whole number from 0 to ${DEV_UPLOAD_MAX_BYTES}`);
  }
  return { filename, mimeType, sizeBytes };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
