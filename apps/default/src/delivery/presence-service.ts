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
import type { Db } from "../events/store.js";

const MAX_PROFILES = 500;

/**
 * Presence, derived from the connection registry: online while a device is connected, otherwise
 * the time last seen. Served only about people who share a room with the caller.
 */
export class PresenceService {
  constructor(
    private readonly db: Db,
    private readonly registry: ConnectionRegistry,
    private readonly live: LiveBus,
  ) {}

  async get(caller: Identity, profileIds: string[]): Promise<PresenceFrame[]> {
    checkCount("profile_ids", profileIds.length, MAX_PROFILES, 1);
    for (const [i, p] of profileIds.entries()) checkProfileId(`profile_ids[${i}]`, p);
    const visible = await this.coMembers(caller.profileId, [...new Set(profileIds)]);
    const ids = [...visible];
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
    const rows = await this.db
      .selectFrom("room_subscriptions as mine")
      .innerJoin("room_subscriptions as other", "other.room_id", "mine.room_id")
      .select("other.profile_id")
      .distinct()
      .where("mine.profile_id", "=", caller.profileId)
      .where("mine.state", "=", "active")
      .where("other.state", "=", "active")
      .where("other.profile_id", "!=", caller.profileId)
      .execute();
    const frame = create(ServerFrameSchema, {
      frame: { case: "presence", value: { profileId: caller.profileId, state, lastSeen: timestampFromMs(Date.now()) } },
    });
    publishToUsers(
      this.live,
      rows.map((r) => r.profile_id),
      toBinary(ServerFrameSchema, frame),
    );
  }

  private async coMembers(callerId: string, profileIds: string[]): Promise<Set<string>> {
    const rows = await this.db
      .selectFrom("room_subscriptions as mine")
      .innerJoin("room_subscriptions as other", "other.room_id", "mine.room_id")
      .select("other.profile_id")
      .distinct()
      .where("mine.profile_id", "=", callerId)
      .where("mine.state", "=", "active")
      .where("other.state", "=", "active")
      .where("other.profile_id", "in", profileIds)
      .execute();
    return new Set(rows.map((r) => r.profile_id));
  }
}
