import type { AppError } from "@service-chat/core";
import { describe, expect, it } from "vitest";
import { assertMemberCan, decideView } from "../../src/authz/access.js";
import { type Action, assertCan, can, mayGrant, outranks, ROLES } from "../../src/authz/permissions.js";
import type { Role, RoomRow, SubscriptionRow } from "../../src/db/schema.js";

// The permission matrix and the rules around it, decided with no database. The expected table is
// written out here, as docs/permissions.md shows it: changing the matrix changes this test too.

const O = true;
const _ = false;
const EXPECTED: Record<Action, [owner: boolean, admin: boolean, moderator: boolean, member: boolean, guest: boolean]> =
  {
    "room.read": [O, O, O, O, O],
    "event.send": [O, O, O, O, _],
    "event.redact_any": [O, O, O, _, _],
    "room.update": [O, O, _, _, _],
    "room.delete": [O, _, _, _, _],
    "member.add": [O, O, O, _, _],
    "member.remove": [O, O, O, _, _],
    "member.role": [O, O, _, _, _],
    "room.retention": [O, O, _, _, _],
  };

const cells = (Object.keys(EXPECTED) as Action[]).flatMap((action) =>
  ROLES.map((role, i) => ({ action, role, allowed: EXPECTED[action][i] as boolean })),
);

const refusal = (f: () => unknown): AppError | undefined => {
  try {
    f();
    return undefined;
  } catch (err) {
    return err as AppError;
  }
};

describe("the permission matrix", () => {
  it("names the roles highest first", () => {
    expect(ROLES).toEqual(["owner", "admin", "moderator", "member", "guest"]);
  });

  it.each(cells)("$role may $action: $allowed", ({ action, role, allowed }) => {
    expect(can(role, action)).toBe(allowed);
    const err = refusal(() => assertCan(role, action));
    if (allowed) expect(err).toBeUndefined();
    else expect(err).toMatchObject({ code: "permission_denied", message: expect.stringContaining(`(${role})`) });
  });

  it("allows nothing without a role", () => {
    for (const action of Object.keys(EXPECTED) as Action[]) {
      expect(can(undefined, action)).toBe(false);
      expect(refusal(() => assertCan(undefined, action))).toMatchObject({ code: "permission_denied" });
    }
  });
});

describe("rank", () => {
  const pairs = ROLES.flatMap((actor, a) => ROLES.map((target, t) => ({ actor, target, a, t })));

  it.each(pairs)("$actor acting on $target", ({ actor, target, a, t }) => {
    // Owners act on anyone, owners included; others only on roles below their own.
    expect(outranks(actor, target)).toBe(actor === "owner" || a < t);
    // Nobody grants a role above their own.
    expect(mayGrant(actor, target)).toBe(t >= a);
  });
});

const room = (type: RoomRow["type"]) => ({ id: "r", type }) as RoomRow;
const sub = (role: Role) => ({ room_id: "r", profile_id: "p", role }) as SubscriptionRow;

describe("room visibility", () => {
  it("hides a missing room, and a private one from non-members, alike", () => {
    expect(refusal(() => decideView(undefined, undefined))).toMatchObject({ code: "not_found" });
    for (const type of ["group", "direct"] as const) {
      expect(refusal(() => decideView(room(type), undefined))).toMatchObject({
        code: "not_found",
        message: "room not found",
      });
      expect(decideView(room(type), sub("guest"))).toEqual({ room: room(type), sub: sub("guest") });
    }
  });

  it("shows a channel to everyone", () => {
    expect(decideView(room("channel"), undefined)).toEqual({ room: room("channel") });
  });

  it("lets members act by their role; tells a channel's visitor to join, hides a group from a stranger", () => {
    expect(assertMemberCan(room("group"), "member", "event.send")).toBe("member");
    expect(refusal(() => assertMemberCan(room("group"), "guest", "event.send"))).toMatchObject({
      code: "permission_denied",
    });
    expect(refusal(() => assertMemberCan(room("group"), null, "event.send"))).toMatchObject({ code: "not_found" });
    expect(refusal(() => assertMemberCan(room("channel"), null, "event.send"))).toMatchObject({
      code: "permission_denied",
      message: expect.stringContaining("join it first"),
    });
  });
});
