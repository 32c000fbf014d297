import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type PresenceFrame, PresenceFrameSchema, PresenceState, ServerFrameSchema } from "@service-chat/api";
import {
  type ConnectionRegistry,
  checkCount,
  checkProfileId,
  type Identity,
  invalid,
  type LiveBus,
} from "@service-chat/core";
import { publishToUsers } from "@service-chat/protocol";
import type { DeliveryStore } from "./store.js";

const MAX_PROFILES = 500;

/**
 * Presence, derived from the connection registry: online while a device is connected, otherwise
 * the time last seen. Served only about people who share a room with the caller.
 */
export class PresenceService {
  constructor(
    private readonly store: DeliveryStore,
    private readonly registry: ConnectionRegistry,
    private readonly live: LiveBus,
  ) {}

  async get(caller: Identity, profileIds: string[]): Promise<PresenceFrame[]> {
    checkCount("profile_ids", profileIds.length, MAX_PROFILES, 1);
    for (const [i, p] of profileIds.entries()) checkProfileId(`profile_ids[${i}]`, p);
    const ids = await this.store.coMembers(caller.profileId, [...new Set(profileIds)]);
    const [online, seen] = await Promise.all([this.registry.online(ids), this.registry.lastSeen(ids)]);
    return ids.map((profileId) => {
      const last = seen.get(profileId);
      return create(PresenceFrameSchema, {
        profileId,
        state: online.has(profileId) ? PresenceState.ONLINE : PresenceState.OFFLINE,
        ...(last !== undefined ? { lastSeen: timestampFromMs(last) } : {}),
      });
    });
  }

  /** Sends the caller's state, live, to everyone who shares a room with them. */
  async set(caller: Identity, state: PresenceState): Promise<void> {
    if (state !== PresenceState.ONLINE && state !== PresenceState.AWAY) {
      throw invalid(
        "state",
        "must be PRESENCE_STATE_ONLINE or PRESENCE_STATE_AWAY (offline follows from disconnecting)",
      );
    }
    const others = await this.store.coMembers(caller.profileId);
    const frame = create(ServerFrameSchema, {
      frame: { case: "presence", value: { profileId: caller.profileId, state, lastSeen: timestampFromMs(Date.now()) } },
    });
    publishToUsers(this.live, others, toBinary(ServerFrameSchema, frame));
  }
}
