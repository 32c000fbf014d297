import { describe, expect, it } from "vitest";
import { checkRetention, effectivePolicy, purgeUpTo } from "../../src/lifecycle/retention.js";

// What one retention step deletes, decided from seqs alone: always a prefix of the room.

const policy = (maxAgeSec: number, maxEvents: number) => ({ maxAgeSec, maxEvents });

describe("purgeUpTo", () => {
  it("keeps the newest max_events", () => {
    expect(purgeUpTo({ firstSeq: 1, lastSeq: 100, policy: policy(0, 30), batch: 1000 })).toBe(70);
    expect(purgeUpTo({ firstSeq: 71, lastSeq: 100, policy: policy(0, 30), batch: 1000 })).toBe(70);
  });

  it("deletes by age up to the first young event, so an old event after a young one waits", () => {
    expect(purgeUpTo({ firstSeq: 1, lastSeq: 100, policy: policy(3600, 0), firstYoungSeq: 41, batch: 1000 })).toBe(40);
    expect(purgeUpTo({ firstSeq: 1, lastSeq: 100, policy: policy(3600, 0), batch: 1000 })).toBe(100);
  });

  it("takes whichever limit deletes more", () => {
    const both = { firstSeq: 1, lastSeq: 100, policy: policy(3600, 80), batch: 1000 };
    expect(purgeUpTo({ ...both, firstYoungSeq: 11 })).toBe(20);
    expect(purgeUpTo({ ...both, firstYoungSeq: 51 })).toBe(50);
  });

  it("never deletes an event still waiting to be published", () => {
    expect(purgeUpTo({ firstSeq: 1, lastSeq: 100, policy: policy(0, 10), firstUnpublishedSeq: 60, batch: 1000 })).toBe(
      59,
    );
  });

  it("deletes at most a batch per step", () => {
    expect(purgeUpTo({ firstSeq: 11, lastSeq: 100_000, policy: policy(0, 10), batch: 500 })).toBe(510);
  });

  it("deletes nothing when the policy keeps everything", () => {
    expect(purgeUpTo({ firstSeq: 1, lastSeq: 100, policy: policy(0, 0), batch: 1000 })).toBe(0);
    expect(purgeUpTo({ firstSeq: 1, lastSeq: 100, policy: policy(0, 100), batch: 1000 })).toBe(0);
  });
});

describe("the policy of a room", () => {
  it("takes the room's own values where set, the default elsewhere, 0 meaning for ever", () => {
    const defaults = policy(86400, 1000);
    expect(effectivePolicy({ retention_max_age_sec: null, retention_max_events: null }, defaults)).toEqual(defaults);
    expect(effectivePolicy({ retention_max_age_sec: 0, retention_max_events: null }, defaults)).toEqual(
      policy(0, 1000),
    );
  });

  it("refuses negative or huge values, naming the field", () => {
    expect(() => checkRetention("retention", { maxAgeSeconds: -1n } as never)).toThrow(
      "retention.max_age_seconds: must not be negative",
    );
    expect(() => checkRetention("retention", { maxEvents: 10n ** 16n } as never)).toThrow(
      "retention.max_events: must be at most",
    );
    expect(checkRetention("retention", { maxEvents: 5n } as never)).toEqual({
      retention_max_age_sec: null,
      retention_max_events: 5,
    });
  });
});
