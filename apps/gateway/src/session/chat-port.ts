import type { Client } from "@connectrpc/connect";
import type { AckEvent, ChatService, PresenceState, RoomCursor, RoomEvent, SyncResponse } from "@service-chat/api";

/**
 * What a device session asks of the Default Service, on behalf of one device. A refusal rejects
 * with the ConnectError the RPC would give (unauthenticated ends the session; any other code goes
 * back to the device as an `error` frame).
 */
export interface ChatPort {
  /** Stores one event; the ack carries its id and seq, or the per-event error. */
  send(event: RoomEvent): Promise<AckEvent>;
  /** Moves the device's delivered cursors forward. */
  ack(cursors: RoomCursor[]): Promise<void>;
  markRead(roomId: string, seq: bigint): Promise<void>;
  typing(roomId: string, active: boolean): Promise<void>;
  presence(state: PresenceState): Promise<void>;
  /** One page of what the device has not seen from these positions. */
  sync(cursors: RoomCursor[], limit: number): Promise<SyncResponse>;
}

/** Opens the port of a device once its hello is accepted. */
export type OpenChatPort = (device: { token: string; deviceId: string }) => ChatPort;

/** The port over a ChatService client: every call carries the device's own token. */
export function chatClientPort(chat: Client<typeof ChatService>): OpenChatPort {
  return ({ token, deviceId }) => {
    const options = { headers: { authorization: `Bearer ${token}` } };
    return {
      async send(event) {
        const { ack } = await chat.sendEvent({ event: [event] }, options);
        return ack[0] as AckEvent;
      },
      async ack(cursors) {
        await chat.ackEvents({ acks: cursors, deviceId }, options);
      },
      async markRead(roomId, seq) {
        await chat.markRead({ roomId, seq }, options);
      },
      async typing(roomId, active) {
        await chat.sendTyping({ roomId, active }, options);
      },
      async presence(state) {
        await chat.setPresence({ state }, options);
      },
      sync: (cursors, limit) => chat.sync({ cursors, limit, deviceId }, options),
    };
  };
}
