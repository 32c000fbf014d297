import { toBinary } from "@bufbuild/protobuf";
import { type RoomEvent, RoomEventSchema } from "@service-chat/api";
import type { EventRow } from "../db/schema.js";
import { presentEvent } from "../events/present.js";

/** Bytes of encoded events kept, at most (16 MiB: about 100,000 text messages). */
const MAX_KEPT_BYTES = 16 * 1024 * 1024;

/**
 * The binary form (a RoomEvent) of stored events, kept for the events that were neither edited nor
 * redacted: when the devices of a room catch up in different SyncDevices calls (a reconnect storm
 * spreads a room's members over many), each event is presented and encoded once, not once per call.
 *
 * Why a kept form is never stale: every statement that changes a stored event sets `edited` or
 * `redacted` (an edit, a redaction, an erasure: events/store.ts, privacy/store.ts), and a kept form
 * is used only for a row read with both still false, that is as it was stored. A row read edited or
 * redacted is encoded afresh every time. The oldest kept forms go first beyond MAX_KEPT_BYTES; one
 * whose event was erased or purged since is never answered again and goes in its turn.
 */
export class EncodedEvents {
  private readonly kept = new Map<string, Uint8Array>();
  private keptBytes = 0;

  constructor(private readonly maxBytes = MAX_KEPT_BYTES) {}

  /** The row's event in binary; `present` gives its RoomEvent when it must be encoded. */
  of(row: EventRow, present: () => RoomEvent = () => presentEvent(row)): Uint8Array {
    const pristine = !row.edited && !row.redacted;
    if (pristine) {
      const bytes = this.kept.get(row.id);
      if (bytes) return bytes;
    }
    const bytes = toBinary(RoomEventSchema, present());
    if (pristine) this.keep(row.id, bytes);
    return bytes;
  }

  /** Events kept and their bytes (for tests and metrics). */
  get size(): { events: number; bytes: number } {
    return { events: this.kept.size, bytes: this.keptBytes };
  }

  private keep(id: string, bytes: Uint8Array): void {
    this.kept.set(id, bytes);
    this.keptBytes += bytes.byteLength;
    for (const [oldest, old] of this.kept) {
      if (this.keptBytes <= this.maxBytes) break;
      this.kept.delete(oldest);
      this.keptBytes -= old.byteLength;
    }
  }
}
