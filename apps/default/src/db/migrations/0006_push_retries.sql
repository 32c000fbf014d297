-- Push notifications waiting for another attempt, kept in the database so that a restart loses
-- none. A fan-out process claims the due ones by moving their due time a lease ahead (FOR UPDATE
-- SKIP LOCKED: each row goes to one process); a process that dies mid-attempt leaves the row to
-- come due again when its lease ends.
create table push_retries (
  id          text primary key,
  room_id     text not null,
  event_id    text not null,
  -- The body to send.
  payload     jsonb not null,
  attempts    integer not null,
  last_error  text not null,
  due_at      timestamptz not null
);
create index push_retries_due on push_retries (due_at);
