import { create } from "@bufbuild/protobuf";
import type { AckEvent, PresenceState, RoomCursor, RoomEvent, SyncResponse } from "@service-chat/api";
import { SyncResponseSchema } from "@service-chat/api";
import {
  type Identity,
  type Logger,
  type OutageLog,
  SpanKind,
  type Tracing,
  unauthenticated,
} from "@service-chat/core";
import type { ChatPort, OpenChatPort, PortDevice } from "@service-chat/gateway";
import { type ChatServices, presentAck } from "./chat-handlers.js";
import { toConnectError } from "./errors.js";

/**
 * The device sessions of a gateway in the same process as the Default Service call its services
 * directly, with the identity the gateway verified at the hello: no RPC encoding, no second token
 * check per frame. Answers and refusals are exactly the RPCs' (the same presenters, and errors
 * through the one mapping in errors.ts), so a device cannot tell which port it is on.
 */
export function localChatPort(
  services: ChatServices,
  logger: Logger,
  outage?: OutageLog,
  tracing?: Tracing,
): OpenChatPort {
  return (device) => new LocalChatPort(services, device, logger, outage, tracing);
}

class LocalChatPort implements ChatPort {
  constructor(
    private readonly services: ChatServices,
    private readonly device: PortDevice,
    private readonly logger: Logger,
    private readonly outage?: OutageLog,
    private readonly tracing?: Tracing,
  ) {}

  /** With tracing on, a device's send is the root span of its message's trace, as an RPC's would be. */
  send(events: RoomEvent[]): Promise<AckEvent[]> {
    const go = () =>
      this.run("SendEvent", async (caller) => (await this.services.events.send(caller, events)).map(presentAck));
    if (!this.tracing) return go();
    const attributes = { "chat.device_id": this.device.deviceId, "chat.events": events.length };
    return this.tracing.span("chat.v1.GatewayService/send", { kind: SpanKind.SERVER, attributes }, go);
  }

  ack(cursors: RoomCursor[]): Promise<void> {
    return this.run("AckEvents", async (caller) => {
      await this.services.sync.ack(caller, cursors, this.device.deviceId);
    });
  }

  markRead(roomId: string, seq: bigint): Promise<void> {
    return this.run("MarkRead", async (caller) => {
      await this.services.sync.markRead(caller, roomId, seq);
    });
  }

  typing(roomId: string, active: boolean): Promise<void> {
    return this.run("SendTyping", (caller) => this.services.sync.typing(caller, roomId, active));
  }

  presence(state: PresenceState): Promise<void> {
    return this.run("SetPresence", (caller) => this.services.presence.set(caller, state));
  }

  sync(cursors: RoomCursor[], limit: number): Promise<SyncResponse> {
    return this.run("Sync", async (caller) =>
      create(
        SyncResponseSchema,
        await this.services.sync.sync(caller, { cursors, limit, deviceId: this.device.deviceId }),
      ),
    );
  }

  /** Runs a call as the device's caller; a token that expired meanwhile is refused as the RPC would. */
  private async run<T>(procedure: string, call: (caller: Identity) => Promise<T>): Promise<T> {
    const { identity } = this.device;
    try {
      if (identity.expiresAt !== undefined && Date.now() >= identity.expiresAt) throw unauthenticated("token expired");
      const answer = await call(identity);
      this.outage?.ok();
      return answer;
    } catch (err) {
      throw toConnectError(err, this.logger, procedure, this.outage);
    }
  }
}
