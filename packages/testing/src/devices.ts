import { create, fromBinary, fromJsonString, type MessageInitShape, toBinary, toJsonString } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  ClientFrameSchema,
  GatewayService,
  type RoomEvent,
  type ServerFrame,
  ServerFrameSchema,
} from "@service-chat/api";
import WebSocket from "ws";
import { UNTIL_TIMEOUT_MS } from "./until.js";

type ClientFrameInit = MessageInitShape<typeof ClientFrameSchema>;

/** A test device on the gateway: every frame it got, and a way to send its own. */
export interface Device {
  frames: ServerFrame[];
  send(frame: ClientFrameInit): void;
  /** Sends raw bytes or text, as a broken or hostile client would. */
  raw(data: Buffer | string): void;
  /** Resolves with the first frame (already received, or from now on) matching; rejects after `ms` (default UNTIL_TIMEOUT_MS). */
  waitFor(match: (f: ServerFrame) => boolean, ms?: number): Promise<ServerFrame>;
  /** Events received, by room, in arrival order. */
  events(roomId?: string): RoomEvent[];
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

function collector() {
  const frames: ServerFrame[] = [];
  const waiters = new Set<() => void>();
  return {
    frames,
    add(f: ServerFrame) {
      frames.push(f);
      for (const w of waiters) w();
    },
    waitFor(match: (f: ServerFrame) => boolean, ms = UNTIL_TIMEOUT_MS): Promise<ServerFrame> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = frames.find(match);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching frame in ${ms} ms; got ${frames.map((f) => f.frame.case).join(",")}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
    events(roomId?: string) {
      return frames.flatMap((f) =>
        f.frame.case === "event" && (!roomId || f.frame.value.roomId === roomId) ? [f.frame.value] : [],
      );
    },
  };
}

/** A browser-style device: WebSocket at /ws, token in hello (or header), binary or JSON frames. */
export async function wsDevice(
  httpUrl: string,
  hello: MessageInitShape<typeof ClientFrameSchema>["frame"] | undefined,
  options: { json?: boolean; headerToken?: string } = {},
): Promise<Device> {
  const c = collector();
  const ws = new WebSocket(`${httpUrl.replace(/^http/, "ws")}/ws`, options.json ? ["json"] : [], {
    ...(options.headerToken ? { headers: { authorization: `Bearer ${options.headerToken}` } } : {}),
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on("message", (data: Buffer, isBinary) => {
    c.add(isBinary ? fromBinary(ServerFrameSchema, data) : fromJsonString(ServerFrameSchema, data.toString()));
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const send = (frame: ClientFrameInit) => {
    const msg = create(ClientFrameSchema, frame);
    ws.send(options.json ? toJsonString(ClientFrameSchema, msg) : toBinary(ClientFrameSchema, msg));
  };
  if (hello) send({ frame: hello });
  return { ...c, send, raw: (data) => ws.send(data), closed, close: () => ws.close(), socket: ws } as Device;
}

/** A native device: GatewayService.Connect over gRPC (HTTP/2), token in the header. */
export async function grpcDevice(grpcUrl: string, token: string, hello: ClientFrameInit["frame"]): Promise<Device> {
  const c = collector();
  const client = createClient(GatewayService, createGrpcTransport({ baseUrl: grpcUrl }));
  const outgoing: ClientFrameInit[] = [{ frame: hello }];
  let wake: () => void = () => {};
  let done = false;
  const abort = new AbortController();
  async function* requests() {
    for (;;) {
      const next = outgoing.shift();
      if (next) yield create(ClientFrameSchema, next);
      else if (done) return;
      else await new Promise<void>((r) => (wake = r));
    }
  }
  let resolveClosed!: (v: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((r) => (resolveClosed = r));
  void (async () => {
    try {
      for await (const f of client.connect(requests(), {
        headers: { authorization: `Bearer ${token}` },
        signal: abort.signal,
      })) {
        c.add(f);
      }
    } catch {
      // ended by the test or the server
    }
    const last = c.frames.findLast((f) => f.frame.case === "disconnect");
    resolveClosed(
      last?.frame.case === "disconnect"
        ? { code: last.frame.value.code, reason: last.frame.value.reason }
        : { code: 0, reason: "" },
    );
  })();
  return {
    ...c,
    closed,
    send(frame) {
      outgoing.push(frame);
      wake();
    },
    raw() {
      throw new Error("raw bytes cannot be sent on a typed HTTP/2 stream");
    },
    close() {
      done = true;
      wake();
      abort.abort();
    },
  };
}
