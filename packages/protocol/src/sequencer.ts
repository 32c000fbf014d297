/**
 * Per-room order for one device. Because seqs are dense, the next event of a room is always
 * last + 1: anything at or below is a repeat, anything above means events are missing and must be
 * fetched (Sync or GetHistory) before this one is shown.
 */
export class RoomSequencer {
  /**
   * Made with the first room: a gateway keeps one sequencer per device, and an empty Map still
   * costs about 180 bytes, which a device in no room (or idle since it connected) need not pay.
   */
  private last: Map<string, number> | undefined;

  constructor(positions: Iterable<readonly [string, number]> = []) {
    for (const [room, seq] of positions) this.set(room, seq);
  }

  /** Judges an event; a "deliver" moves the room's position to `seq`. */
  offer(roomId: string, seq: number): "deliver" | "duplicate" | "gap" {
    const last = this.last?.get(roomId);
    if (last !== undefined && seq <= last) return "duplicate";
    if (last !== undefined && seq > last + 1) return "gap";
    this.set(roomId, seq);
    return "deliver";
  }

  /** The highest seq delivered in the room, if any. */
  position(roomId: string): number | undefined {
    return this.last?.get(roomId);
  }

  /** Moves a room's position, e.g. after a resync. */
  set(roomId: string, seq: number): void {
    this.last ??= new Map();
    this.last.set(roomId, seq);
  }

  entries(): IterableIterator<[string, number]> {
    return (this.last ?? NONE).entries();
  }
}

const NONE: ReadonlyMap<string, number> = new Map();
