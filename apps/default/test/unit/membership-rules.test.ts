import type { AppError } from "@service-chat/core";
import { describe, expect, it } from "vitest";
import type { Role } from "../../src/db/schema.js";
import {
  assertMayAdd,
  assertMayChangeRole,
  assertMayRemove,
  assertNotDirect,
  assertOwnerStays,
  LAST_OWNER,
  type Member,
  ownersAmong,
} from "../../src/subscriptions/rules.js";

// Who may add, remove and change the role of whom, and the last owner: decided with no database.

const m = (profile_id: string, role: Role): Member => ({ profile_id, role });
const refusal = (f: () => unknown): AppError | undefined => {
  try {
    f();
    return undefined;
  } catch (err) {
    return err as AppError;
  }
};

describe("adding members", () => {
  const group = { type: "group" as const };
  const channel = { type: "channel" as const };

  it("lets anyone join a channel alone, as member or guest only", () => {
    expect(refusal(() => assertMayAdd(channel, undefined, "me", ["me"], ["member"]))).toBeUndefined();
    expect(refusal(() => assertMayAdd(channel, undefined, "me", ["me"], ["guest"]))).toBeUndefined();
    for (const role of ["owner", "admin", "moderator"] as const) {
      expect(refusal(() => assertMayAdd(channel, undefined, "me", ["me"], [role]))).toMatchObject({
        code: "permission_denied",
        message: "members[0].role: you can join a channel as member or guest",
      });
    }
  });

  it("does not let a non-member add others, to a channel or a group", () => {
    expect(refusal(() => assertMayAdd(channel, undefined, "me", ["me", "you"], ["member", "member"]))).toMatchObject({
      code: "permission_denied",
      message: expect.stringContaining("join it first"),
    });
    expect(refusal(() => assertMayAdd(group, undefined, "me", ["me"], ["member"]))).toMatchObject({
      code: "permission_denied",
    });
  });

  it("needs member.add, and grants no role above the adder's own, naming the entry", () => {
    expect(refusal(() => assertMayAdd(group, m("me", "member"), "me", ["x"], ["member"]))).toMatchObject({
      code: "permission_denied",
    });
    expect(refusal(() => assertMayAdd(group, m("me", "moderator"), "me", ["x", "y"], ["moderator", "guest"]))).toBe(
      undefined,
    );
    expect(
      refusal(() => assertMayAdd(group, m("me", "moderator"), "me", ["x", "y"], ["member", "admin"])),
    ).toMatchObject({ code: "permission_denied", message: "members[1].role: you cannot grant a role above your own" });
    expect(refusal(() => assertMayAdd(group, m("me", "owner"), "me", ["x"], ["owner"]))).toBeUndefined();
  });

  it("leaves a direct room's two members as they are", () => {
    expect(refusal(() => assertNotDirect({ type: "direct" }))).toMatchObject({ code: "failed_precondition" });
    expect(refusal(() => assertNotDirect(group))).toBeUndefined();
  });
});

describe("removing members", () => {
  it("always lets a member leave", () => {
    expect(refusal(() => assertMayRemove(m("g", "guest"), [m("g", "guest")]))).toBeUndefined();
  });

  it("needs member.remove and a role above the target's; owners remove anyone", () => {
    expect(refusal(() => assertMayRemove(m("a", "member"), [m("b", "guest")]))).toMatchObject({
      code: "permission_denied",
    });
    expect(refusal(() => assertMayRemove(m("a", "moderator"), [m("b", "member"), m("c", "guest")]))).toBeUndefined();
    expect(refusal(() => assertMayRemove(m("a", "moderator"), [m("b", "moderator")]))).toMatchObject({
      code: "permission_denied",
      message: "cannot remove b: their role is not below yours",
    });
    expect(refusal(() => assertMayRemove(m("a", "admin"), [m("b", "owner")]))).toMatchObject({
      code: "permission_denied",
    });
    expect(refusal(() => assertMayRemove(m("a", "owner"), [m("b", "owner")]))).toBeUndefined();
  });
});

describe("changing roles", () => {
  it("needs member.role and an existing target", () => {
    expect(refusal(() => assertMayChangeRole(m("a", "moderator"), m("b", "guest"), "member"))).toMatchObject({
      code: "permission_denied",
    });
    expect(refusal(() => assertMayChangeRole(m("a", "admin"), undefined, "member"))).toMatchObject({
      code: "not_found",
      message: "member not found",
    });
  });

  it("acts on lower roles only (or oneself), granting no role above one's own", () => {
    expect(assertMayChangeRole(m("a", "admin"), m("b", "member"), "moderator")).toBe(true);
    expect(refusal(() => assertMayChangeRole(m("a", "admin"), m("b", "admin"), "member"))).toMatchObject({
      code: "permission_denied",
      message: "cannot change the role of b: their role is not below yours",
    });
    expect(refusal(() => assertMayChangeRole(m("a", "admin"), m("b", "member"), "owner"))).toMatchObject({
      code: "permission_denied",
      message: "role: you cannot grant a role above your own",
    });
    expect(assertMayChangeRole(m("a", "admin"), m("a", "admin"), "member")).toBe(true);
    expect(assertMayChangeRole(m("a", "owner"), m("b", "owner"), "admin")).toBe(true);
  });

  it("answers false when the role is already the target's", () => {
    expect(assertMayChangeRole(m("a", "owner"), m("b", "member"), "member")).toBe(false);
  });
});

describe("the last owner", () => {
  it("cannot leave or step down while no other owner stays", () => {
    expect(ownersAmong([m("a", "owner"), m("b", "admin"), m("c", "owner")])).toBe(2);
    expect(refusal(() => assertOwnerStays(1, 1))).toMatchObject({ code: "failed_precondition", message: LAST_OWNER });
    expect(refusal(() => assertOwnerStays(2, 2))).toMatchObject({ code: "failed_precondition" });
    expect(refusal(() => assertOwnerStays(2, 1))).toBeUndefined();
    expect(refusal(() => assertOwnerStays(1, 0))).toBeUndefined();
  });
});
