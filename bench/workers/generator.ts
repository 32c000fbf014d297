/**
 * A load generator process. The benchmark starts several and drives them over the IPC channel:
 * each command is one message `{call, cmd, args}` answered by `{reply, result | error}`.
 * Generators never share a process with a server: their CPU is measured on its own.
 */
import {
  closeDevices,
  connectDevices,
  deviceCount,
  drop,
  reconnect,
  sendTyping,
  stepBegin,
  stepStats,
  waitCaughtUp,
} from "./devices.js";
import { fanSend, roomsSeed, roomsSend, roomsSetup, sendLoad } from "./send.js";
import { streamBegin, streamClose, streamConnect, streamSend, streamStats } from "./stream.js";

const commands: Record<string, (args: any) => unknown> = {
  "send.run": sendLoad,
  "fan.send": fanSend,
  "rooms.setup": roomsSetup,
  "rooms.seed": roomsSeed,
  "rooms.send": roomsSend,
  "devices.connect": connectDevices,
  "devices.stepBegin": stepBegin,
  "devices.stepStats": stepStats,
  "devices.count": deviceCount,
  "devices.close": closeDevices,
  "devices.typing": sendTyping,
  "storm.drop": drop,
  "storm.reconnect": reconnect,
  "storm.waitCaughtUp": waitCaughtUp,
  "stream.connect": streamConnect,
  "stream.begin": streamBegin,
  "stream.send": streamSend,
  "stream.stats": streamStats,
  "stream.close": streamClose,
};

process.on("message", async (m: { call: number; cmd: string; args: unknown }) => {
  const handler = commands[m.cmd];
  try {
    if (!handler) throw new Error(`unknown command ${m.cmd}`);
    const result = await handler(m.args);
    process.send?.({ reply: m.call, result: result ?? null });
  } catch (err) {
    process.send?.({ reply: m.call, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }
});
process.on("disconnect", () => process.exit(0));
process.send?.({ ready: true });
