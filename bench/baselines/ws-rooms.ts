/**
 * The raw baseline of the message-path scenario: the device stream's frames over the `ws` library
 * and nothing else — no token check, no database, no queue, no registry. A device's hello makes it
 * a member of the room its user name says (`<room>-m<k>`: the scenario's naming); a `send` gets
 * the room's next seq, goes to every member as an `event` frame (encoded once per encoding) and is
 * answered with an `ack`. What the scenario measures against it is what the frames, the sockets
 * and the event loop cost alone, on the same core and with the same devices as Service Chat.
 * Prints its port over IPC.
 */
import type { AddressInfo } from "node:net";
import { create, fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import { ClientFrameSchema, type ServerFrame, ServerFrameSchema } from "@service-chat/api";
import { JSON_PROTOCOL } from "@service-chat/protocol";
import type WebSocket from "ws";
import { WebSocketServer } from "ws";

interface Room {
  seq: number;
  members: Set<WebSocket>;
}

const rooms = new Map<string, Room>();
const wss = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has(JSON_PROTOCOL) ? JSON_PROTOCOL : false),
});
let nextId = 0;

/** The user a token names (its `sub`), read without checking the signature: this server trusts everyone. */
function userOf(token: string): string {
  const payload = token.split(".")[1] ?? "";
  return String((JSON.parse(Buffer.from(payload, "base64url").toString()) as { sub?: unknown }).sub ?? "");
}

wss.on("connection", (ws) => {
  const json = ws.protocol === JSON_PROTOCOL;
  const encode = (frame: ServerFrame) =>
    json ? toJsonString(ServerFrameSchema, frame) : toBinary(ServerFrameSchema, frame);
  let room: Room | undefined;
  ws.on("message", (data: Buffer) => {
    const frame = json ? fromJsonString(ClientFrameSchema, data.toString()) : fromBinary(ClientFrameSchema, data);
    const f = frame.frame;
    if (f.case === "hello") {
      const roomId = userOf(f.value.token).replace(/-m\d+$/, "");
      room = rooms.get(roomId) ?? { seq: 0, members: new Set() };
      rooms.set(roomId, room);
      room.members.add(ws);
      ws.send(encode(create(ServerFrameSchema, { frame: { case: "synced", value: {} } })));
    } else if (f.case === "send") {
      const target = rooms.get(f.value.roomId);
      if (!target) return;
      const event = { ...f.value, id: `e${nextId++}`, seq: BigInt(++target.seq) };
      const out = encode(create(ServerFrameSchema, { frame: { case: "event", value: event } }));
      for (const member of target.members) member.send(out, { binary: !json });
      const ack = { eventId: event.id, roomId: event.roomId, seq: event.seq, clientId: event.clientId };
      ws.send(encode(create(ServerFrameSchema, { requestId: frame.requestId, frame: { case: "ack", value: ack } })));
    }
  });
  const leave = () => room?.members.delete(ws);
  ws.on("close", leave);
  ws.on("error", leave);
});

wss.on("listening", () => {
  process.send?.({ listening: (wss.address() as AddressInfo).port });
});

const stop = () => {
  for (const ws of wss.clients) ws.terminate();
  wss.close(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
