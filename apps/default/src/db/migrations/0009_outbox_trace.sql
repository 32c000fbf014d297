-- The traceparent of the transaction that stored an event (tracing on; null otherwise): a relay in
-- another process, or one catching up after a restart, reads it with the row and continues the
-- trace, as the relay of the storing process does with what it is handed.
alter table outbox add column trace text;
