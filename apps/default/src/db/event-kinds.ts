import type { MigrationStep } from "@service-chat/core";
import { type Kysely, sql } from "kysely";
import { KIND_NAMES } from "../events/kinds/index.js";

/** The CHECK on room_events.type (named by PostgreSQL when 0001_init.sql made it inline). */
export const KINDS_CHECK = "room_events_type_check";
const NAME = /^[a-z][a-z0-9_]*$/;

/** The kinds the CHECK on room_events.type allows; undefined when there is no such CHECK. */
export async function allowedKinds(db: Kysely<any>): Promise<string[] | undefined> {
  const { rows } = await sql<{ def: string }>`
    select pg_get_constraintdef(oid) as def from pg_constraint
    where conrelid = 'room_events'::regclass and conname = ${KINDS_CHECK}`.execute(db);
  const def = rows[0]?.def;
  // e.g. CHECK ((type = ANY (ARRAY['text'::text, 'attachment'::text, …])))
  return def === undefined
    ? undefined
    : [...def.matchAll(/'((?:[^']|'')*)'/g)].map((m) => (m[1] as string).replace(/''/g, "'"));
}

/**
 * Keeps the database's CHECK on room_events.type in line with the kinds of events/kinds/index.ts:
 * run by the migrator after the SQL migrations, under their advisory lock, at every start. When a
 * kind of the list is missing, the CHECK is replaced by one allowing the kinds it allowed plus the
 * list's. It only widens: an instance of an older release starting during a rolling upgrade must
 * not take a new kind away from the newer ones, and removing a kind means deciding what becomes of
 * its stored events, which is a numbered migration's job. Widening an existing CHECK is `not valid`:
 * every row already passed a narrower one, so there is nothing to scan for.
 */
export const syncEventKinds: MigrationStep = {
  name: "room_events.type allows every event kind",
  async run(trx) {
    const current = await allowedKinds(trx);
    const missing = KIND_NAMES.filter((k) => !current?.includes(k));
    if (current && missing.length === 0) return false;
    const kinds = [...(current ?? []), ...missing];
    for (const k of kinds) if (!NAME.test(k)) throw new Error(`event kind ${JSON.stringify(k)} is not a plain name`);
    const list = kinds.map((k) => `'${k}'`).join(", ");
    await sql
      .raw(
        `alter table room_events drop constraint if exists ${KINDS_CHECK}, ` +
          `add constraint ${KINDS_CHECK} check (type in (${list}))${current ? " not valid" : ""}`,
      )
      .execute(trx);
    return true;
  },
};
