-- The audit log: one row per administrative action (rooms created, updated or deleted, members
-- added or removed, roles changed, dead letters replayed), written in the transaction of the
-- action itself. Rows are never changed or removed: a trigger refuses it.
create table audit_log (
  id          text primary key,
  created_at  timestamptz not null default now(),
  actor_id    text not null,
  action      text not null,
  room_id     text,
  -- The profiles (or dead letters) the action was about.
  targets     jsonb not null default '[]',
  details     jsonb not null default '{}',
  request_id  text not null default ''
);
create index audit_log_by_room on audit_log (room_id, id) where room_id is not null;
create index audit_log_by_actor on audit_log (actor_id, id);

create function audit_log_immutable() returns trigger language plpgsql as $$
begin
  raise exception 'audit_log rows are immutable';
end
$$;
create trigger audit_log_immutable before update or delete on audit_log
  for each row execute function audit_log_immutable();
