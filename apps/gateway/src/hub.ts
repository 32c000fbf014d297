import { fromBinary } from "@bufbuild/protobuf";
import { type ServerFrame, ServerFrameSchema } from "@service-chat/api";
import { extract, type LiveBus, type Logger, SpanKind, type Tracing } from "@service-chat/core";
import { DELIVERIES_SUBJECT, type Delivery, decodeDelivery } from "@service-chat/protocol";

/** What the hub needs of a session. */
export interface HubMember {
  readonly connectionId: string;
  readonly profileId: string;
  /** A live frame for this user: decoded once per gateway, bytes as published. */
  deliver(frame: ServerFrame, bytes: Uint8Array): void;
  /** Another connection of the same device took this one's place. */
  replaced(): void;
}

const controlSubject = (gatewayId: string) => `gateway.${Buffer.from(gatewayId).toString("base64url")}`;

/**
 * The gateway's side of the live bus: one subscription to the deliveries subject for all devices
 * here (a connecting device subscribes to nothing), one decode per message whatever the number of
 * local recipients, and a control subject on which other gateways ask this one to close a
 * connection that a newer one replaced.
 */
export class LiveHub {
  /** Connected sessions by user (an array: most users have one or two here). */
  private readonly users = new Map<string, HubMember[]>();
  private readonly connections = new Map<string, HubMember>();
  private readonly off: (() => Promise<void>)[] = [];
  private started?: Promise<void>;
  /** Set when tracing is on: a traced delivery written to devices here is a `gateway.deliver` span. */
  tracing?: Tracing;

  constructor(
    private readonly live: LiveBus,
    private readonly gatewayId: string,
    private readonly logger: Logger,
  ) {}

  /** Resolves once both subjects are subscribed: from then on nothing for a local device is missed. */
  start(): Promise<void> {
    this.started ??= this.subscribe();
    return this.started;
  }

  private async subscribe(): Promise<void> {
    this.off.push(await this.live.subscribe(DELIVERIES_SUBJECT, (data) => this.dispatch(data)));
    this.off.push(
      await this.live.subscribe(controlSubject(this.gatewayId), (data) => {
        this.connections.get(Buffer.from(data).toString("utf8"))?.replaced();
      }),
    );
  }

  async stop(): Promise<void> {
    for (const off of this.off.splice(0)) await off().catch(() => {});
    this.users.clear();
    this.connections.clear();
  }

  /** Resolves once the member gets every live frame for its user (at once, after start). */
  async add(member: HubMember): Promise<void> {
    this.connections.set(member.connectionId, member);
    const members = this.users.get(member.profileId);
    if (members) members.push(member);
    else this.users.set(member.profileId, [member]);
    await this.start();
  }

  remove(member: HubMember): void {
    this.connections.delete(member.connectionId);
    const members = this.users.get(member.profileId);
    const at = members?.indexOf(member) ?? -1;
    if (!members || at < 0) return;
    members.splice(at, 1);
    if (members.length === 0) this.users.delete(member.profileId);
  }

  /** Closes a connection wherever it is: here at once, elsewhere through that gateway's control subject. */
  replace(connectionId: string, gatewayId: string): void {
    if (gatewayId === this.gatewayId) this.connections.get(connectionId)?.replaced();
    else this.live.publish([controlSubject(gatewayId)], Buffer.from(connectionId));
  }

  private dispatch(data: Uint8Array): void {
    let delivery: Delivery;
    let frame: ServerFrame | undefined;
    try {
      delivery = decodeDelivery(data);
    } catch (err) {
      this.logger.error({ err }, "undecodable live delivery");
      return;
    }
    // In ms since the epoch with the clock's fraction: a span a few ms long is read to the tenth.
    const started = this.tracing && delivery.traceparent ? performance.timeOrigin + performance.now() : 0;
    let written = 0;
    for (const profileId of delivery.recipients) {
      const members = this.users.get(profileId);
      if (!members) continue;
      if (!frame) {
        try {
          frame = fromBinary(ServerFrameSchema, delivery.frame);
        } catch (err) {
          this.logger.error({ err }, "undecodable live frame");
          return;
        }
      }
      for (const member of members) member.deliver(frame, delivery.frame);
      written += members.length;
    }
    if (started && written > 0) this.traceDelivery(delivery.traceparent, started, written);
  }

  /** The span of a traced delivery: from its arrival to its frames written to `devices` sessions here. */
  private traceDelivery(traceparent: string, started: number, devices: number): void {
    const span = this.tracing?.tracer.startSpan(
      "gateway.deliver",
      { kind: SpanKind.CONSUMER, startTime: started, attributes: { "chat.devices": devices } },
      extract(traceparent),
    );
    span?.end();
  }
}
