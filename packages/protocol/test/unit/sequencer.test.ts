import { describe, expect, it } from "vitest";
import { RoomSequencer } from "../../src/sequencer.js";

// Per-room order for one device: seqs are dense, so last + 1 is next, lower is a repeat, higher a gap.

describe("RoomSequencer", () => {
  it("delivers the first event of a room it has no position for, whatever its seq", () => {
    const s = new RoomSequencer();
    expect(s.offer("a", 7)).toBe("deliver");
    expect(s.position("a")).toBe(7);
    expect(s.position("b")).toBeUndefined();
  });

  it("delivers last + 1, drops repeats, reports gaps without moving", () => {
    const s = new RoomSequencer([["a", 10]]);
    expect(s.offer("a", 11)).toBe("deliver");
    expect(s.offer("a", 11)).toBe("duplicate");
    expect(s.offer("a", 3)).toBe("duplicate");
    expect(s.offer("a", 13)).toBe("gap");
    expect(s.position("a")).toBe(11);
    expect(s.offer("a", 12)).toBe("deliver");
    expect(s.offer("a", 13)).toBe("deliver");
  });

  it("keeps rooms apart", () => {
    const s = new RoomSequencer([
      ["a", 1],
      ["b", 5],
    ]);
    expect(s.offer("b", 6)).toBe("deliver");
    expect(s.offer("a", 6)).toBe("gap");
    expect([...s.entries()]).toEqual([
      ["a", 1],
      ["b", 6],
    ]);
  });

  it("moves a position on request, as after a resync, back or forth", () => {
    const s = new RoomSequencer([["a", 100]]);
    s.set("a", 4000);
    expect(s.offer("a", 4001)).toBe("deliver");
    s.set("a", 10);
    expect(s.offer("a", 11)).toBe("deliver");
  });
});
