-- Push notifications that failed every attempt, kept for an admin to list and replay.
create table push_dead_letters (
  id          text primary key,
  room_id     text not null,
  event_id    text not null,
  -- The signed body that was to be sent.
  payload     jsonb not null,
  attempts    integer not null,
  last_error  text not null,
  created_at  timestamptz not null default now()
);
create index push_dead_letters_by_time on push_dead_letters (created_at, id);
