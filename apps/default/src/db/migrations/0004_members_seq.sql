-- The seq of the room's latest membership change: fan-out workers compare it with what their
-- membership cache was loaded at, so a change made while another worker had the room's partition
-- still reaches every cache.
alter table rooms add column members_seq bigint not null default 0;
