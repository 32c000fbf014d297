import { expect, it } from "vitest";
import { statementName } from "../../src/db/metrics.js";

it("names statements by verb and first table, with a bounded set of names", () => {
  expect(statementName('select "r".* from "rooms" as "r" where "id" = $1')).toBe("select rooms");
  expect(statementName('insert into "room_events" ("id") values ($1), ($2)')).toBe("insert room_events");
  expect(statementName('update "rooms" set "last_seq" = $1')).toBe("update rooms");
  expect(statementName('delete from "outbox" where "id" in ($1, $2, $3)')).toBe("delete outbox");
  expect(statementName("  with locked as (select id from rooms for update) insert into outbox select 1")).toBe(
    "with rooms",
  );
  expect(statementName("lock table audit_log")).toBe("lock audit_log");
  expect(statementName("create table x (id int)")).toBe("create");
  expect(statementName("select 1")).toBe("select");
  expect(statementName("")).toBe("other");
});
