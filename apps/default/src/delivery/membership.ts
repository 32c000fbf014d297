import type { RoomEvent } from "@service-chat/api";
import { SystemEventKind } from "@service-chat/api";
import { encodeRecipient } from "@service-chat/protocol";
import { presentEvent } from "../events/present.js";
import type { DeliveryStore } from "./store.js";

export interface Member {
  profileId: string;
  /** The profile id as a LiveDelivery recipient, encoded once while the room is cached. */
  wire: Uint8Array;
}

/** A room's members as they stand after event `asOf`. */
interface Entry {
  asOf: number;
  members: Map<string, Member>;
  /** `members` as a list, made when first asked for after a change. */
  list?: Member[];
}

/** A membership change an event makes: who joins with it, who leaves after it. */
export interface MembershipChange {
  /** Members from this event on (they receive it). */
  added: string[];
  /** Members up to and including this event (they receive it, and nothing after). */
  removed: string[];
  /** The room's creation: nobody was a member before it. */
  created: boolean;
}

/** What an event does to its room's membership (nothing, for all but a few system events). */
export function membershipChange(event: Pick<RoomEvent, "content">): MembershipChange | undefined {
  const c = event.content;
  if (c.case !== "system") return undefined;
  const { kind, profileIds, actorId } = c.value;
  if (kind === SystemEventKind.ROOM_CREATED) return { added: [actorId, ...profileIds], removed: [], created: true };
  if (kind === SystemEventKind.MEMBERS_ADDED) return { added: profileIds, removed: [], created: false };
  if (kind === SystemEventKind.MEMBERS_REMOVED) return { added: [], removed: profileIds, created: false };
  return undefined;
}

/**
 * Who receives which event of a room: a member gets the event that added them, every event after
 * it, and the event that removed them, nothing after.
 *
 * Fan-out sees a room's events in seq order, membership changes among them (they are system
 * events), so the cache follows each room forward: the members after event n-1 are the recipients
 * of event n (with those event n adds), then event n's change applies. When the cache cannot
 * follow — a room it has not seen, or events it did not see (another worker had the partition, a
 * redelivery) — it rebuilds the room as it stood before event n: today's members, with every
 * membership change from event n on undone, newest first. So a late event goes to the members of
 * its time, never to those of a later change, whichever worker handles it.
 */
export class MembershipCache {
  private readonly rooms = new Map<string, Entry>();

  constructor(
    private readonly store: DeliveryStore,
    /** Rooms kept at most (FANOUT_CACHE_ROOMS); the least recently used goes first. */
    private readonly maxRooms: number,
  ) {}

  /**
   * The recipients of the event `seq` of a room, which makes `change` to its membership (see
   * `membershipChange`); a room's events are best asked for in seq order.
   */
  async recipients(roomId: string, seq: number, change?: MembershipChange): Promise<Member[]> {
    let entry = this.rooms.get(roomId);
    if (!entry || entry.asOf !== seq - 1) {
      const loaded = await this.load(roomId, seq);
      // The room's membership changes from this event on were removed by retention (a fan-out far
      // behind): who was in then cannot be told, so nobody gets it live — devices are told to
      // resync by Sync, which every gap fill goes through (docs/data-lifecycle.md).
      if (!loaded) return [];
      entry = loaded;
    }
    this.rooms.delete(roomId);
    if (this.rooms.size >= this.maxRooms) this.rooms.delete(this.rooms.keys().next().value as string);
    this.rooms.set(roomId, entry);
    let recipients: Member[];
    if (change) {
      if (change.created) entry.members.clear();
      for (const p of change.added) if (!entry.members.has(p)) entry.members.set(p, member(p));
      recipients = [...entry.members.values()];
      for (const p of change.removed) entry.members.delete(p);
      entry.list = undefined;
    } else {
      entry.list ??= [...entry.members.values()];
      recipients = entry.list;
    }
    entry.asOf = seq;
    return recipients;
  }

  /** The room as it stood after event `seq - 1`; undefined when retention removed events from `seq` on. */
  private async load(roomId: string, seq: number): Promise<Entry | undefined> {
    // Today's members first, then the changes: a change committed between the two reads is in
    // the second, and undoing it is right whether or not the first saw it.
    const members = new Set(await this.store.activeMembers(roomId));
    const changes = await this.store.systemEventsFrom(roomId, seq);
    // Read after the changes: a purge that committed before them shows here.
    if (seq < (await this.store.firstSeq(roomId))) return undefined;
    for (const row of changes) {
      const change = membershipChange(presentEvent(row));
      if (!change) continue;
      for (const p of change.added) members.delete(p);
      for (const p of change.removed) members.add(p);
      if (change.created) members.clear();
    }
    return { asOf: seq - 1, members: new Map([...members].map((p) => [p, member(p)])) };
  }
}

const member = (profileId: string): Member => ({ profileId, wire: encodeRecipient(profileId) });
