-- Data lifecycle: retention per room, and the record of erasures (docs/data-lifecycle.md).

-- A room's own retention policy; null takes the deployment's default, 0 keeps events for ever.
alter table rooms add column retention_max_age_sec bigint;
alter table rooms add column retention_max_events bigint;
-- The first seq still stored: the retention worker moves it forward as it deletes events, in the
-- same transaction. Seqs before it are gone for good and are never reused.
alter table rooms add column first_seq bigint not null default 1;

-- A person's events, for erasure and export (both walk them by room and seq).
create index if not exists room_events_by_sender on room_events (sender_id, room_id, seq);

-- One row per person erased: who asked, when, and whether it completed. A call that finds the row
-- unfinished carries on where the last one stopped (every step is idempotent).
create table erasures (
  profile_id          text primary key,
  requested_by        text not null,
  requested_at        timestamptz not null default now(),
  completed_at        timestamptz,
  events_redacted     bigint not null default 0,
  rooms_left          integer not null default 0,
  direct_rooms_closed integer not null default 0
);
