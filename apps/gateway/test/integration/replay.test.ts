import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RoomEvent, RoomEventType } from "@service-chat/api";
import {
  type Device,
  edit,
  fullHistory,
  groupRoom,
  grpcDevice,
  react,
  redact,
  sendOk,
  startTestApp,
  type TestApp,
  text,
  wsDevice,
} from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// A gateway of its own (SERVICES=gateway) replays through SyncDevices with the events in binary,
// which it passes on without decoding them unless a device needs the objects (JSON, HTTP/2).
let dir: string;
let service: TestApp;
let gateway: TestApp;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "chat-replay-"));
  const shared = { DEV_SIGNER_KEY_FILE: join(dir, "dev-key.json") };
  service = await startTestApp(shared);
  gateway = await startTestApp({ ...shared, SERVICES: "gateway", CHAT_SERVICE_URI: service.grpcUrl });
});
afterAll(async () => {
  await gateway?.stop();
  await service?.stop();
  await rm(dir, { recursive: true, force: true });
});

type Transport = "ws-json" | "ws-binary" | "grpc";

/** Connects one of bob's devices to the gateway from where he joined; answers the events replayed before `synced`. */
async function replayed(transport: Transport, deviceId: string, roomId: string): Promise<RoomEvent[]> {
  const token = await gateway.signer.sign({ sub: "rp-bob", device_id: deviceId });
  const device: Device =
    transport === "grpc"
      ? await grpcDevice(gateway.grpcUrl, token, { case: "hello", value: {} })
      : await wsDevice(gateway.httpUrl, { case: "hello", value: { token } }, { json: transport === "ws-json" });
  try {
    const synced = await device.waitFor((f) => f.frame.case === "synced");
    const before = device.frames.slice(0, device.frames.indexOf(synced));
    return before.flatMap((f) => (f.frame.case === "event" && f.frame.value.roomId === roomId ? [f.frame.value] : []));
  } finally {
    device.close();
  }
}

describe("replay through a gateway of its own", () => {
  it("gives JSON, binary and HTTP/2 devices every missed event in full, edits and redactions as they are now", async () => {
    const roomId = await groupRoom(service, "rp-alice", "rp-bob");
    const alice = service.as("rp-alice");
    const first = await sendOk(alice, text(roomId, "first, to be edited", { clientId: "rp1" }));
    const second = await sendOk(alice, text(roomId, "second, to be redacted", { clientId: "rp2" }));
    await sendOk(alice, react(roomId, first.eventId));
    await sendOk(alice, {
      roomId,
      type: RoomEventType.ATTACHMENT,
      content: {
        case: "attachment",
        value: { uri: "https://files.example/a.png", mimeType: "image/png", sizeBytes: 1234n, filename: "a.png" },
      },
    });

    const before = await fullHistory(service.as("rp-bob"), roomId);
    expect(before.map((e) => e.content.case)).toEqual(["system", "text", "text", "reaction", "attachment"]);
    expect(await replayed("ws-json", "rp-json-1", roomId)).toEqual(before);

    // The same events again, changed since: each device replayed now sees them as they are now.
    await sendOk(alice, edit(roomId, first.eventId, "first, edited"));
    await sendOk(alice, redact(roomId, second.eventId));
    const after = await fullHistory(service.as("rp-bob"), roomId);
    expect(after.find((e) => e.id === first.eventId)).toMatchObject({ edited: true });
    expect(after.find((e) => e.id === second.eventId)).toMatchObject({ redacted: true });
    const [json, binary, grpc] = await Promise.all([
      replayed("ws-json", "rp-json-2", roomId),
      replayed("ws-binary", "rp-binary", roomId),
      replayed("grpc", "rp-grpc", roomId),
    ]);
    expect(json).toEqual(after);
    expect(binary).toEqual(after);
    expect(grpc).toEqual(after);
  });
});
