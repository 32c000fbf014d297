import { fromBinary } from "@bufbuild/protobuf";
import { type ServerFrame, ServerFrameSchema } from "@service-chat/api";
import type { LiveBus } from "@service-chat/core";
import { DELIVERIES_SUBJECT, decodeDelivery } from "@service-chat/protocol";

/**
 * Listens to the live bus as gateways do: every frame published for users, decoded, handed over
 * once per recipient.
 */
export function tapDeliveries(
  live: LiveBus,
  onFrame: (profileId: string, frame: ServerFrame) => void,
): Promise<() => Promise<void>> {
  return live.subscribe(DELIVERIES_SUBJECT, (data) => {
    const delivery = decodeDelivery(data);
    const frame = fromBinary(ServerFrameSchema, delivery.frame);
    for (const profileId of delivery.recipients) onFrame(profileId, frame);
  });
}

/**
 * A user's live subscription as a test sees it: every event frame received, by room, in arrival
 * order (duplicates kept, so the test can judge them).
 */
export class Inbox {
  readonly byRoom = new Map<string, number[]>();
  received = 0;
  private off?: () => Promise<void>;

  constructor(readonly user: string) {}

  /** Listens for several inboxes with one subscription; the returned function ends it. */
  static listenAll(live: LiveBus, inboxes: Map<string, Inbox>): Promise<() => Promise<void>> {
    return tapDeliveries(live, (profileId, frame) => inboxes.get(profileId)?.record(frame));
  }

  async listen(live: LiveBus): Promise<void> {
    this.off = await Inbox.listenAll(live, new Map([[this.user, this]]));
  }

  async close(): Promise<void> {
    await this.off?.();
  }

  private record(frame: ServerFrame): void {
    if (frame.frame.case !== "event") return;
    const { roomId, seq } = frame.frame.value;
    const list = this.byRoom.get(roomId) ?? [];
    list.push(Number(seq));
    this.byRoom.set(roomId, list);
    this.received++;
  }

  /** Seqs of a room after dropping repeats, in the order they first arrived. */
  deduped(roomId: string): number[] {
    const seen = new Set<number>();
    return (this.byRoom.get(roomId) ?? []).filter((s) => !seen.has(s) && seen.add(s) !== undefined);
  }
}
