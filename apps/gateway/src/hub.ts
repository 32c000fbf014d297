import { fromBinary } from "@bufbuild/protobuf";
import { type ServerFrame, ServerFrameSchema } from "@service-chat/api";
import { type LiveBus, type Logger, userSubject } from "@service-chat/core";

/** What the hub needs of a session. */
export interface HubMember {
  readonly connectionId: string;
  readonly profileId: string;
  /** A frame from the user's live subject: decoded once per gateway, bytes as published. */
  deliver(frame: ServerFrame, bytes: Uint8Array): void;
  /** Another connection of the same device took this one's place. */
  replaced(): void;
}

const controlSubject = (gatewayId: string) => `gateway.${Buffer.from(gatewayId).toString("base64url")}`;

/**
 * The gateway's side of the live subjects: one subscription per connected user (shared by all
 * that user's devices here), one decode per message, and a control subject on which other
 * gateways ask this one to close a connection that a newer one replaced.
 */
export class LiveHub {
  private readonly users = new Map<string, { members: Set<HubMember>; off: Promise<() => Promise<void>> }>();
  private readonly connections = new Map<string, HubMember>();
  private offControl?: () => Promise<void>;

  constructor(
    private readonly live: LiveBus,
    private readonly gatewayId: string,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.offControl = await this.live.subscribe(controlSubject(this.gatewayId), (data) => {
      this.connections.get(Buffer.from(data).toString("utf8"))?.replaced();
    });
  }

  async stop(): Promise<void> {
    await this.offControl?.();
    for (const { off } of this.users.values()) await (await off)().catch(() => {});
    this.users.clear();
  }

  /** Resolves once the user's live subject is subscribed: from then on nothing is missed. */
  async add(member: HubMember): Promise<void> {
    this.connections.set(member.connectionId, member);
    let user = this.users.get(member.profileId);
    if (!user) {
      const off = this.live.subscribe(userSubject(member.profileId), (data) => this.dispatch(member.profileId, data));
      user = { members: new Set(), off };
      this.users.set(member.profileId, user);
    }
    user.members.add(member);
    await user.off;
  }

  remove(member: HubMember): void {
    this.connections.delete(member.connectionId);
    const user = this.users.get(member.profileId);
    if (!user) return;
    user.members.delete(member);
    if (user.members.size === 0) {
      this.users.delete(member.profileId);
      void user.off.then((off) => off()).catch(() => {});
    }
  }

  /** Closes a connection wherever it is: here at once, elsewhere through that gateway's control subject. */
  replace(connectionId: string, gatewayId: string): void {
    if (gatewayId === this.gatewayId) this.connections.get(connectionId)?.replaced();
    else this.live.publish([controlSubject(gatewayId)], Buffer.from(connectionId));
  }

  private dispatch(profileId: string, data: Uint8Array): void {
    const user = this.users.get(profileId);
    if (!user) return;
    let frame: ServerFrame;
    try {
      frame = fromBinary(ServerFrameSchema, data);
    } catch (err) {
      this.logger.error({ err }, "undecodable live frame");
      return;
    }
    for (const member of user.members) member.deliver(frame, data);
  }
}
