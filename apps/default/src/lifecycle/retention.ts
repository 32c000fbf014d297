import type { RetentionPolicy } from "@service-chat/api";
import { invalid } from "@service-chat/core";

/** The deployment's default policy (RETENTION_MAX_AGE_SEC, RETENTION_MAX_EVENTS); 0 keeps for ever. */
export interface RetentionDefaults {
  maxAgeSec: number;
  maxEvents: number;
}

/** A room's own policy as stored: null takes the default, 0 keeps for ever. */
export interface StoredPolicy {
  retention_max_age_sec: number | null;
  retention_max_events: number | null;
}

const MAX_AGE_SEC = 100 * 365 * 86400;
const MAX_EVENTS = 1e15;

/** The policy that applies to a room: its own where set, the default elsewhere. */
export function effectivePolicy(room: StoredPolicy, defaults: RetentionDefaults): RetentionDefaults {
  return {
    maxAgeSec: room.retention_max_age_sec ?? defaults.maxAgeSec,
    maxEvents: room.retention_max_events ?? defaults.maxEvents,
  };
}

/** A policy from UpdateRoom, checked: unset fields become null (the default). */
export function checkRetention(field: string, p: RetentionPolicy): StoredPolicy {
  const bound = (name: string, v: bigint | undefined, max: number): number | null => {
    if (v === undefined) return null;
    if (v < 0n) throw invalid(`${field}.${name}`, "must not be negative (0 keeps events for ever)");
    if (v > BigInt(max)) throw invalid(`${field}.${name}`, `must be at most ${max}`);
    return Number(v);
  };
  return {
    retention_max_age_sec: bound("max_age_seconds", p.maxAgeSeconds, MAX_AGE_SEC),
    retention_max_events: bound("max_events", p.maxEvents, MAX_EVENTS),
  };
}

/** What a purge of one room knows once it holds the room's lock. */
export interface PurgeInput {
  firstSeq: number;
  lastSeq: number;
  policy: RetentionDefaults;
  /** The first stored seq whose event is younger than the maximum age (undefined: none is). */
  firstYoungSeq?: number | undefined;
  /** The room's first event the outbox relay has not published yet (undefined: none waits). */
  firstUnpublishedSeq?: number | undefined;
  /** Events deleted per transaction at most (RETENTION_BATCH_SIZE). */
  batch: number;
}

/**
 * The last seq one purge step deletes (below `firstSeq`: nothing to do). Retention always removes
 * a prefix of the room, so the stored events stay one dense range `firstSeq..lastSeq`: by count,
 * everything before the newest `maxEvents`; by age, everything before the first young event (an
 * old event after a young one waits for it, so no hole opens). Never an event still waiting to be
 * published, so every event reaches the stream before it goes; at most `batch` at a time.
 */
export function purgeUpTo(p: PurgeInput): number {
  let upTo = p.firstSeq - 1;
  if (p.policy.maxEvents > 0) upTo = Math.max(upTo, p.lastSeq - p.policy.maxEvents);
  if (p.policy.maxAgeSec > 0) upTo = Math.max(upTo, (p.firstYoungSeq ?? p.lastSeq + 1) - 1);
  if (p.firstUnpublishedSeq !== undefined) upTo = Math.min(upTo, p.firstUnpublishedSeq - 1);
  return Math.min(upTo, p.firstSeq + p.batch - 1, p.lastSeq);
}
