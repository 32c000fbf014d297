import { encodeRecipient } from "@service-chat/protocol";
import type { DeliveryStore } from "./store.js";

export interface Member {
  profileId: string;
  /** The profile id as a LiveDelivery recipient, encoded once per cache load. */
  wire: Uint8Array;
  joinedSeq: number;
  leftSeq: number | null;
}

interface Entry {
  /** The room's members_seq when the entry was loaded. */
  version: number;
  members: Member[];
}

/**
 * Who receives which event of a room. A member gets the events after the one that added them up
 * to and including the one that removed them. The cache holds each room's memberships with the
 * room's `members_seq` at load time; every stream entry says the room's current `members_seq`, and
 * an older entry is loaded again. So a change takes effect for the very next event, whichever
 * worker handled the change itself.
 */
export class MembershipCache {
  private readonly rooms = new Map<string, Entry>();

  constructor(
    private readonly store: DeliveryStore,
    /** Rooms kept at most (FANOUT_CACHE_ROOMS); the least recently loaded goes first. */
    private readonly maxRooms: number,
  ) {}

  async recipients(roomId: string, seq: number, membersSeq: number): Promise<Member[]> {
    let entry = this.rooms.get(roomId);
    if (!entry || entry.version < membersSeq) {
      entry = await this.load(roomId, seq);
      this.rooms.delete(roomId);
      if (this.rooms.size >= this.maxRooms) this.rooms.delete(this.rooms.keys().next().value as string);
      this.rooms.set(roomId, entry);
    }
    return entry.members.filter((m) => m.joinedSeq < seq && (m.leftSeq === null || seq <= m.leftSeq));
  }

  private async load(roomId: string, seq: number): Promise<Entry> {
    // The version first: a change landing between the two reads makes the entry look older than
    // it is, which only means one more load.
    const version = await this.store.membersSeq(roomId);
    const rows = await this.store.memberships(roomId, seq);
    return {
      version,
      members: rows.map((r) => ({
        profileId: r.profile_id,
        wire: encodeRecipient(r.profile_id),
        joinedSeq: r.joined_seq,
        leftSeq: r.left_seq,
      })),
    };
  }
}
