-- Which process wrote an outbox row: that process's relay publishes its own commits as they commit
-- (handed over in process) and needs to read the table only for what others wrote. The NOTIFY at
-- commit names the writer when every row of the statement has the same one.
alter table outbox add column origin text not null default '';

create or replace function outbox_notify() returns trigger language plpgsql as $$
begin
  perform pg_notify('outbox', coalesce(
    (select case when min(origin) = max(origin) then min(origin) else '' end from inserted), ''));
  return null;
end
$$;
drop trigger outbox_notify on outbox;
create trigger outbox_notify after insert on outbox referencing new table as inserted
  for each statement execute function outbox_notify();
