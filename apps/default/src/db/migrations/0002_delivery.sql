-- Delivery: when a member left (so fan-out knows who gets which seq), per-device cursors, devices,
-- and a NOTIFY that wakes the outbox relay when events are stored.

-- The seq of the event that removed the member; null while a member.
alter table room_subscriptions add column left_seq bigint;

-- Per device and room: the highest seq the device acknowledged. One row per (device, room),
-- updated in place; never a row per message.
create table device_cursors (
  profile_id    text not null,
  device_id     text not null,
  room_id       text not null references rooms (id),
  delivered_seq bigint not null default 0,
  updated_at    timestamptz not null default now(),
  primary key (profile_id, device_id, room_id)
);

create table devices (
  profile_id text not null,
  device_id  text not null,
  last_seen  timestamptz not null default now(),
  push       jsonb not null default '{}',
  primary key (profile_id, device_id)
);

-- One notification per storing transaction (PostgreSQL folds duplicates), delivered at commit.
create function outbox_notify() returns trigger language plpgsql as $$
begin
  perform pg_notify('outbox', '');
  return null;
end
$$;
create trigger outbox_notify after insert on outbox for each statement execute function outbox_notify();
