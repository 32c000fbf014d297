import { userSubject } from "@service-chat/core";
import type { Kysely } from "kysely";
import type { Schema } from "../db/schema.js";

export interface Member {
  profileId: string;
  /** The member's live subject, made once per cache load. */
  subject: string;
  joinedSeq: number;
  leftSeq: number | null;
}

/**
 * Who receives which event of a room, from a cache of its memberships kept fresh by the room's
 * own membership events: a member gets the events after the one that added them up to and
 * including the one that removed them. Fan-out invalidates a room when it meets a membership event,
 * which travels in the same ordered partition as the events after it, so a change takes effect
 * for the very next event.
 */
export class MembershipCache {
  private readonly rooms = new Map<string, Member[]>();

  constructor(
    private readonly db: Kysely<Schema>,
    private readonly maxRooms = 10_000,
  ) {}

  async recipients(roomId: string, seq: number): Promise<Member[]> {
    let members = this.rooms.get(roomId);
    if (!members) {
      members = await this.load(roomId, seq);
      if (this.rooms.size >= this.maxRooms) this.rooms.delete(this.rooms.keys().next().value as string);
      this.rooms.set(roomId, members);
    }
    return members.filter((m) => m.joinedSeq < seq && (m.leftSeq === null || seq <= m.leftSeq));
  }

  invalidate(roomId: string): void {
    this.rooms.delete(roomId);
  }

  private async load(roomId: string, seq: number): Promise<Member[]> {
    const rows = await this.db
      .selectFrom("room_subscriptions")
      .select(["profile_id", "joined_seq", "left_seq"])
      .where("room_id", "=", roomId)
      .where((eb) => eb.or([eb("state", "=", "active"), eb("left_seq", ">=", seq)]))
      .execute();
    return rows.map((r) => ({
      profileId: r.profile_id,
      subject: userSubject(r.profile_id),
      joinedSeq: r.joined_seq,
      leftSeq: r.left_seq,
    }));
  }
}
