-- Rooms, memberships, events and the outbox. Kept to what PostgreSQL 15 supports, so the same
-- file runs on the server and on the embedded PGlite.

create table rooms (
  id           text primary key,
  type         text not null check (type in ('direct', 'group', 'channel')),
  name         text not null default '',
  description  text not null default '',
  metadata     jsonb not null default '{}',
  creator_id   text not null,
  -- The two profile ids of a direct room, sorted and joined: one live direct room per pair.
  direct_key   text unique,
  -- Seq of the newest event; the row lock on it serialises writers of one room.
  last_seq     bigint not null default 0,
  member_count integer not null default 0,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  deleted_at   timestamptz
);
create index rooms_channels on rooms (id) where type = 'channel' and deleted_at is null;

create table room_subscriptions (
  room_id      text not null references rooms (id),
  profile_id   text not null,
  contact_id   text not null default '',
  profile_name text not null default '',
  role         text not null check (role in ('owner', 'admin', 'moderator', 'member', 'guest')),
  state        text not null default 'active' check (state in ('active', 'removed')),
  joined_at    timestamptz not null default now(),
  -- The room's last_seq when the member joined.
  joined_seq   bigint not null default 0,
  -- The member's read marker; only moves forward.
  read_seq     bigint not null default 0,
  settings     jsonb not null default '{}',
  updated_at   timestamptz not null default now(),
  primary key (room_id, profile_id)
);
create index room_subscriptions_by_profile on room_subscriptions (profile_id, room_id) where state = 'active';

create table room_events (
  id                text primary key,
  room_id           text not null references rooms (id),
  -- Dense per room: 1, 2, 3, ... assigned in the storing transaction.
  seq               bigint not null,
  sender_id         text not null,
  sender_contact_id text not null default '',
  type              text not null check (type in
                      ('text', 'attachment', 'reaction', 'encrypted', 'call', 'edit', 'redaction', 'system')),
  -- The content message in protobuf JSON form.
  content           jsonb not null,
  parent_id         text,
  -- The client's idempotency key: one event per (room, sender, client id), for ever.
  client_id         text,
  edited            boolean not null default false,
  redacted          boolean not null default false,
  sent_at           timestamptz not null,
  server_ts         timestamptz not null default now(),
  -- Text bodies for full-text search; 'simple' so every language matches word for word.
  search            tsvector,
  unique (room_id, seq)
);
create unique index room_events_client_id on room_events (room_id, sender_id, client_id) where client_id is not null;
create index room_events_search on room_events using gin (search);

-- One row per stored event, written in the event's transaction; the relay publishes them in id order.
create table outbox (
  id           bigserial primary key,
  event_id     text not null,
  room_id      text not null,
  seq          bigint not null,
  created_at   timestamptz not null default now(),
  published_at timestamptz
);
create index outbox_unpublished on outbox (id) where published_at is null;
