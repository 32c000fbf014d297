import { fromBinary } from "@bufbuild/protobuf";
import { ServerFrameSchema } from "@service-chat/api";
import { type LiveBus, userSubject } from "@service-chat/core";

/**
 * A user's live subscription as a test sees it: every event frame received, by room, in arrival
 * order (duplicates kept, so the test can judge them).
 */
export class Inbox {
  readonly byRoom = new Map<string, number[]>();
  received = 0;
  private off?: () => Promise<void>;

  constructor(readonly user: string) {}

  async listen(live: LiveBus): Promise<void> {
    this.off = await live.subscribe(userSubject(this.user), (data) => {
      const frame = fromBinary(ServerFrameSchema, data);
      if (frame.frame.case !== "event") return;
      const { roomId, seq } = frame.frame.value;
      const list = this.byRoom.get(roomId) ?? [];
      list.push(Number(seq));
      this.byRoom.set(roomId, list);
      this.received++;
    });
  }

  async close(): Promise<void> {
    await this.off?.();
  }

  /** Seqs of a room after dropping repeats, in the order they first arrived. */
  deduped(roomId: string): number[] {
    const seen = new Set<number>();
    return (this.byRoom.get(roomId) ?? []).filter((s) => !seen.has(s) && seen.add(s) !== undefined);
  }
}

export async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
