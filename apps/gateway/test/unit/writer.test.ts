import { create, toBinary } from "@bufbuild/protobuf";
import { type ServerFrame, ServerFrameSchema } from "@service-chat/api";
import type { Disconnect } from "@service-chat/protocol";
import { describe, expect, it } from "vitest";
import { FrameWriter, type Sink } from "../../src/session/writer.js";

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A live event frame of about `size` bytes, with its binary form as the hub would pass it. */
function frame(size: number): { frame: ServerFrame; bytes: Uint8Array } {
  const f = create(ServerFrameSchema, {
    frame: { case: "event", value: { roomId: "r", seq: 1n, clientId: "x".repeat(Math.max(0, size - 20)) } },
  });
  return { frame: f, bytes: toBinary(ServerFrameSchema, f) };
}

/**
 * A transport whose device reads only when told to: `waiting` is what it has not taken. It knows
 * the size of what it writes unless `sizes` is off (then the writer measures, as for HTTP/2).
 */
class Device implements Sink {
  open = true;
  waiting = 0;
  holds = 0;
  releases = 0;
  written = 0;
  ended: Disconnect[] = [];
  constructor(private readonly sizes = true) {}
  backlogged(): boolean {
    return this.waiting > 0;
  }
  write(f: ServerFrame, bytes?: Uint8Array): number | undefined {
    const n = bytes?.byteLength ?? toBinary(ServerFrameSchema, f).byteLength;
    this.waiting += n;
    this.written++;
    return this.sizes ? n : undefined;
  }
  hold(): void {
    this.holds++;
  }
  release(): void {
    this.releases++;
  }
  end(reason: Disconnect): void {
    this.ended.push(reason);
    this.open = false;
  }
  read(): void {
    this.waiting = 0;
  }
}

const MiB = 1024 * 1024;

/** Writes one frame per turn to a device that never reads; answers how many went before it was too slow. */
async function framesUntilSlow(writer: FrameWriter, size: number, max: number): Promise<number> {
  const f = frame(size);
  for (let i = 1; i <= max; i++) {
    if (!writer.write(f.frame, f.bytes)) return i;
    await nextTurn();
  }
  return Number.POSITIVE_INFINITY;
}

describe("the writer's send queue, bounded in bytes", () => {
  it("finds a device that does not read slow after a few large frames", async () => {
    const writer = new FrameWriter(new Device(), MiB);
    // The first is a burst to a device that had caught up; then four of 300 KB pass the bound.
    expect(await framesUntilSlow(writer, 300_000, 100)).toBe(5);
  });

  it("does not find it slow for many small frames that stay below the bound", async () => {
    const writer = new FrameWriter(new Device(), MiB);
    // 3,000 frames of 300 bytes (900 KB): more frames than a bound of 1,000 frames allowed.
    expect(await framesUntilSlow(writer, 300, 3_000)).toBe(Number.POSITIVE_INFINITY);
    // ...and a few more kilobytes are what trips it.
    expect(await framesUntilSlow(writer, 300, 1_000)).toBeLessThan(1_000);
  });

  it("measures frames itself when the transport does not say their size (HTTP/2)", async () => {
    const writer = new FrameWriter(new Device(false), MiB);
    expect(await framesUntilSlow(writer, 300_000, 100)).toBe(5);
  });

  it("never finds a device that keeps up slow, whatever the size of a turn's burst", async () => {
    const device = new Device();
    const writer = new FrameWriter(device, MiB);
    const big = frame(200_000);
    for (let turn = 0; turn < 5; turn++) {
      for (let i = 0; i < 20; i++) expect(writer.write(big.frame, big.bytes)).toBe(true); // 4 MB in one turn
      await nextTurn();
      device.read();
    }
  });

  it("counts from zero again once the device has caught up", async () => {
    const device = new Device();
    const writer = new FrameWriter(device, MiB);
    const f = frame(300_000);
    const oneATurn = async (n: number) => {
      const accepted: boolean[] = [];
      for (let i = 0; i < n; i++) {
        accepted.push(writer.write(f.frame, f.bytes));
        await nextTurn();
      }
      return accepted;
    };
    expect(await oneATurn(4)).toEqual([true, true, true, true]); // a burst, then 900 KB counted
    device.read();
    expect(await oneATurn(5)).toEqual([true, true, true, true, false]);
  });

  it("holds the transport's writes for the rest of the turn, once per turn", async () => {
    const device = new Device();
    const writer = new FrameWriter(device, MiB);
    const f = frame(100);
    for (let i = 0; i < 10; i++) writer.write(f.frame, f.bytes);
    expect([device.holds, device.releases]).toEqual([1, 0]);
    await nextTurn();
    expect([device.holds, device.releases]).toEqual([1, 1]);
    writer.write(f.frame, f.bytes);
    await nextTurn();
    expect([device.holds, device.releases]).toEqual([2, 2]);
  });

  it("drops frames once the transport is closed", () => {
    const device = new Device();
    const writer = new FrameWriter(device, MiB);
    writer.end({ code: 4000, reason: "normal", reconnect: false });
    const f = frame(100);
    expect(writer.write(f.frame, f.bytes)).toBe(true);
    expect(device.written).toBe(0);
  });
});
