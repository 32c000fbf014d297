import { denied } from "@service-chat/core";
import type { Role } from "../db/schema.js";

/**
 * The permission matrix: which role may do what in a room. Every service checks it before it
 * reads or writes; docs/permissions.md shows the same table and tests check it cell by cell.
 */
export const ROLES: readonly Role[] = ["owner", "admin", "moderator", "member", "guest"];

export type Action =
  | "room.read" // get the room, its history, its members; search its events
  | "event.send" // send any kind of event (edits and redactions of one's own events included)
  | "event.redact_any" // redact another member's event
  | "room.update" // change name, description, metadata
  | "room.delete"
  | "member.add"
  | "member.remove" // remove another member (leaving is always allowed)
  | "member.role" // change another member's role
  | "room.retention"; // change the room's retention policy

export const MATRIX: Readonly<Record<Action, readonly Role[]>> = {
  "room.read": ["owner", "admin", "moderator", "member", "guest"],
  "event.send": ["owner", "admin", "moderator", "member"],
  "event.redact_any": ["owner", "admin", "moderator"],
  "room.update": ["owner", "admin"],
  "room.delete": ["owner"],
  "member.add": ["owner", "admin", "moderator"],
  "member.remove": ["owner", "admin", "moderator"],
  "member.role": ["owner", "admin"],
  "room.retention": ["owner", "admin"],
};

const RANK: Readonly<Record<Role, number>> = { owner: 5, admin: 4, moderator: 3, member: 2, guest: 1 };

export const isRole = (s: string): s is Role => (ROLES as readonly string[]).includes(s);

export const can = (role: Role | undefined, action: Action): boolean =>
  role !== undefined && MATRIX[action].includes(role);

export function assertCan(role: Role | undefined, action: Action): void {
  if (!can(role, action)) throw denied(`your role (${role ?? "none"}) may not ${describe[action]}`);
}

/** May `actor` remove `target` or change its role? Owners act on anyone, others only on lower roles. */
export const outranks = (actor: Role, target: Role): boolean => actor === "owner" || RANK[actor] > RANK[target];

/** May `actor` give someone `role`? Nobody grants a role above their own. */
export const mayGrant = (actor: Role, role: Role): boolean => RANK[role] <= RANK[actor];

const describe: Record<Action, string> = {
  "room.read": "read this room",
  "event.send": "send events in this room",
  "event.redact_any": "redact other members' events",
  "room.update": "update this room",
  "room.delete": "delete this room",
  "member.add": "add members",
  "member.remove": "remove other members",
  "member.role": "change roles",
  "room.retention": "change this room's retention policy",
};
