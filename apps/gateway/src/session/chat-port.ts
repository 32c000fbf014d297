import { create } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";
import {
  type AckEvent,
  type ChatService,
  type DeviceSyncRequest,
  DeviceSyncRequestSchema,
  type PresenceState,
  type RoomCursor,
  type RoomEvent,
} from "@service-chat/api";
import type { Identity } from "@service-chat/core";
import { EncodedEvent } from "./encoded-event.js";
import type { ReplayedEvent, SyncPage } from "./ordered-delivery.js";

/**
 * What a device session asks of the Default Service, on behalf of one device. A refusal rejects
 * with the ConnectError the RPC would give (unauthenticated ends the session; any other code goes
 * back to the device as an `error` frame).
 */
export interface ChatPort {
  /**
   * Stores events (at most 100, as SendEvent takes them), in order; each ack carries its event's
   * id and seq, or its per-event error.
   */
  send(events: RoomEvent[]): Promise<AckEvent[]>;
  /** Moves the device's delivered cursors forward. */
  ack(cursors: RoomCursor[]): Promise<void>;
  markRead(roomId: string, seq: bigint): Promise<void>;
  typing(roomId: string, active: boolean): Promise<void>;
  presence(state: PresenceState): Promise<void>;
  /**
   * One page of what the device has not seen from these positions: Sync's answer, its events
   * decoded or as the service encoded them (ordered-delivery.ts, `SyncPage`).
   */
  sync(cursors: RoomCursor[], limit: number): Promise<SyncPage>;
}

/** The device a port acts for: its verified identity and the token it was verified from. */
export interface PortDevice {
  identity: Identity;
  token: string;
  deviceId: string;
}

/**
 * Opens the port of a device once its hello is accepted. A gateway beside the Default Service
 * calls the services directly with the verified identity (apps/default/src/server/gateway-port.ts);
 * a gateway of its own calls ChatService over the network with the device's token (below).
 */
export type OpenChatPort = (device: PortDevice) => ChatPort;

/** The port over a ChatService client: every call carries the device's own token. */
export function chatClientPort(chat: Client<typeof ChatService>): OpenChatPort {
  const syncs = new DeviceSyncs(chat);
  return (device) => new ClientChatPort(chat, syncs, device);
}

/**
 * Devices of one SyncDevices call, at most: as many as the Default Service reads in one batch
 * (delivery/sync-service.ts), so a call is one batch there and the next call is already waiting
 * when a batch ends.
 */
const SYNC_DEVICES_PER_CALL = 200;
/** SyncDevices calls under way at once, at most: the Syncs asked for meanwhile wait for the next. */
const SYNC_CALLS_IN_FLIGHT = 2;
const SYNC_DEVICES_TIMEOUT_MS = 30_000;

interface WaitingSync {
  request: DeviceSyncRequest;
  /** When the device's token expires (unix ms). */
  expiresAt: number;
  resolve(page: SyncPage): void;
  reject(err: unknown): void;
}

/**
 * The Syncs of every device of the gateway asked for in one turn of the event loop (a burst of
 * hellos, a reconnect storm) go to the Default Service together, in one SyncDevices call per 200:
 * one request instead of one per device, each device's token checked there as its own Sync's
 * would be, and each device answered what its own Sync would have answered. As sends are
 * group-committed, with no timer: while two calls are under way, the Syncs asked for meanwhile
 * wait and go together in the next, so calls grow with the load instead of multiplying. A call
 * that has not answered in SYNC_DEVICES_TIMEOUT_MS fails its devices (they reconnect), so none
 * holds the others up for long. The call's own Authorization header is the batch's token that
 * expires last; refused anyway, the batch is asked device by device, so no device pays for
 * another's token. A Default Service that does not know SyncDevices yet is asked device by device
 * from then on.
 */
class DeviceSyncs {
  private waiting: WaitingSync[] = [];
  private running = 0;
  private batched = true;

  constructor(private readonly chat: Client<typeof ChatService>) {}

  sync(token: string, expiresAt: number, cursors: RoomCursor[], limit: number, deviceId: string): Promise<SyncPage> {
    if (!this.batched) return this.one(token, cursors, limit, deviceId);
    return new Promise((resolve, reject) => {
      if (this.waiting.length === 0) setImmediate(() => this.flush());
      this.waiting.push({
        request: create(DeviceSyncRequestSchema, { token, request: { cursors, limit, deviceId } }),
        expiresAt,
        resolve,
        reject,
      });
    });
  }

  private one(token: string, cursors: RoomCursor[], limit: number, deviceId: string): Promise<SyncPage> {
    return this.chat.sync({ cursors, limit, deviceId }, { headers: { authorization: `Bearer ${token}` } });
  }

  private flush(): void {
    while (this.running < SYNC_CALLS_IN_FLIGHT && this.waiting.length > 0) {
      this.running++;
      void this.call(this.waiting.splice(0, SYNC_DEVICES_PER_CALL)).finally(() => {
        this.running--;
        this.flush();
      });
    }
  }

  private async call(batch: WaitingSync[]): Promise<void> {
    const latest = batch.reduce((a, b) => (b.expiresAt > a.expiresAt ? b : a));
    try {
      const answer = await this.chat.syncDevices(
        { devices: batch.map((w) => w.request), encodedEvents: true },
        { timeoutMs: SYNC_DEVICES_TIMEOUT_MS, headers: { authorization: `Bearer ${latest.request.token}` } },
      );
      const { devices } = answer;
      const events: readonly ReplayedEvent[] =
        answer.encodedEvents.length > 0 ? answer.encodedEvents.map((bytes) => new EncodedEvent(bytes)) : answer.events;
      batch.forEach((w, i) => {
        const answer = devices[i]?.result;
        if (answer?.case === "response") {
          // Events several pages hold are one object, framed once for all (ordered-delivery.ts).
          const indexes = devices[i]?.eventIndexes ?? [];
          const page: SyncPage = { ...answer.value, events: indexes.map((n) => events[n] as ReplayedEvent) };
          if (page.events.includes(undefined as unknown as ReplayedEvent)) {
            w.reject(new ConnectError("an event position out of range", Code.Internal));
          } else w.resolve(page);
        } else if (answer?.case === "error") {
          w.reject(new ConnectError(answer.value.message, codeFromString(answer.value.code) ?? Code.Unknown));
        } else w.reject(new ConnectError("no answer for this device", Code.Internal));
      });
    } catch (err) {
      const code = err instanceof ConnectError ? err.code : undefined;
      if (code === Code.Unimplemented || code === Code.Unauthenticated) {
        if (code === Code.Unimplemented) this.batched = false;
        for (const w of batch) {
          const { token, request } = w.request;
          this.one(token, request?.cursors ?? [], request?.limit ?? 0, request?.deviceId ?? "").then(
            w.resolve,
            w.reject,
          );
        }
        return;
      }
      for (const w of batch) w.reject(err);
    }
  }
}

/**
 * One small object per device (its methods are shared): an idle session costs little. It keeps
 * the session's own device object rather than copies of its fields.
 */
class ClientChatPort implements ChatPort {
  constructor(
    private readonly chat: Client<typeof ChatService>,
    private readonly syncs: DeviceSyncs,
    private readonly device: PortDevice,
  ) {}

  async send(events: RoomEvent[]): Promise<AckEvent[]> {
    const { ack } = await this.chat.sendEvent({ event: events }, this.options());
    return ack;
  }

  async ack(cursors: RoomCursor[]): Promise<void> {
    await this.chat.ackEvents({ acks: cursors, deviceId: this.device.deviceId }, this.options());
  }

  async markRead(roomId: string, seq: bigint): Promise<void> {
    await this.chat.markRead({ roomId, seq }, this.options());
  }

  async typing(roomId: string, active: boolean): Promise<void> {
    await this.chat.sendTyping({ roomId, active }, this.options());
  }

  async presence(state: PresenceState): Promise<void> {
    await this.chat.setPresence({ state }, this.options());
  }

  sync(cursors: RoomCursor[], limit: number): Promise<SyncPage> {
    const { token, identity, deviceId } = this.device;
    return this.syncs.sync(token, identity.expiresAt ?? Number.POSITIVE_INFINITY, cursors, limit, deviceId);
  }

  private options() {
    return { headers: { authorization: `Bearer ${this.device.token}` } };
  }
}
