import type { Client } from "@connectrpc/connect";
import type { AckEvent, ChatService, PresenceState, RoomCursor, RoomEvent, SyncResponse } from "@service-chat/api";
import type { Identity } from "@service-chat/core";

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
  /** One page of what the device has not seen from these positions. */
  sync(cursors: RoomCursor[], limit: number): Promise<SyncResponse>;
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
  return ({ token, deviceId }) => new ClientChatPort(chat, token, deviceId);
}

/** One small object per device (its methods are shared): an idle session costs little. */
class ClientChatPort implements ChatPort {
  constructor(
    private readonly chat: Client<typeof ChatService>,
    private readonly token: string,
    private readonly deviceId: string,
  ) {}

  async send(events: RoomEvent[]): Promise<AckEvent[]> {
    const { ack } = await this.chat.sendEvent({ event: events }, this.options());
    return ack;
  }

  async ack(cursors: RoomCursor[]): Promise<void> {
    await this.chat.ackEvents({ acks: cursors, deviceId: this.deviceId }, this.options());
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

  sync(cursors: RoomCursor[], limit: number): Promise<SyncResponse> {
    return this.chat.sync({ cursors, limit, deviceId: this.deviceId }, this.options());
  }

  private options() {
    return { headers: { authorization: `Bearer ${this.token}` } };
  }
}
