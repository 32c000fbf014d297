import { Code, ConnectError } from "@connectrpc/connect";
import type { AckEvent } from "@service-chat/api";
import { type ChatClient, startTestApp, type TestApp } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Action, MATRIX, ROLES } from "../../src/authz/permissions.js";
import type { Role } from "../../src/db/schema.js";
import {
  createGroup,
  editEvent,
  failsWith,
  redactEvent,
  roles,
  roomWithRoles,
  sendOne,
  sendText,
  textEvent,
} from "./room-helpers.js";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

/** The table as the product defines it; MATRIX must say exactly this. */
const TABLE: Record<Action, Role[]> = {
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
const ALL_ROLES: Role[] = ["owner", "admin", "moderator", "member", "guest"];

/** A fresh group room: `actor` has the role under test, `victim` (a member) wrote a message, `target` is a guest. */
interface Scene {
  actor: ChatClient;
  victim: ChatClient;
  roomId: string;
  messageId: string;
  target: string;
  newcomer: string;
}

async function scene(role: Role, tag: string): Promise<Scene> {
  const actor = `${tag}-actor`;
  const owner = role === "owner" ? actor : `${tag}-owner`;
  const members: Record<string, Role> = { [`${tag}-victim`]: "member", [`${tag}-target`]: "guest" };
  if (role !== "owner") members[actor] = role;
  const room = await roomWithRoles(t.as(owner), members);
  const victim = t.as(`${tag}-victim`);
  const ack = await sendText(victim, room.id, "the victim's message");
  return {
    actor: t.as(actor),
    victim,
    roomId: room.id,
    messageId: ack.eventId,
    target: `${tag}-target`,
    newcomer: `${tag}-new`,
  };
}

type Verdict = "allowed" | "denied";

/** Allowed, or refused with PermissionDenied; any other failure fails the test. */
async function verdictOf(call: Promise<unknown>): Promise<Verdict> {
  try {
    await call;
    return "allowed";
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.PermissionDenied) return "denied";
    throw err;
  }
}

/** For SendEvent the call succeeds; a refused event carries the error in its ack. */
function ackVerdict(ack: AckEvent): Verdict {
  if (!ack.error) return "allowed";
  expect(ack.error.code).toBe("permission_denied");
  return "denied";
}

const historyOf = async (s: Scene) => (await s.victim.getHistory({ roomId: s.roomId, limit: 100 })).events;

/** How each action is tried, and how the victim can tell whether it took effect. */
const PROBES: Record<Action, { attempt: (s: Scene) => Promise<Verdict>; tookEffect?: (s: Scene) => Promise<boolean> }> =
  {
    "room.read": {
      attempt: (s) => verdictOf(s.actor.getHistory({ roomId: s.roomId })),
    },
    "event.send": {
      attempt: async (s) => ackVerdict(await sendText(s.actor, s.roomId, "probe")),
      tookEffect: async (s) =>
        (await historyOf(s)).some((e) => e.content.case === "text" && e.content.value.body === "probe"),
    },
    "event.redact_any": {
      attempt: async (s) => ackVerdict(await sendOne(s.actor, redactEvent(s.roomId, s.messageId))),
      tookEffect: async (s) => (await historyOf(s)).find((e) => e.id === s.messageId)?.redacted === true,
    },
    "room.update": {
      attempt: (s) => verdictOf(s.actor.updateRoom({ roomId: s.roomId, name: "renamed" })),
      tookEffect: async (s) => (await s.victim.getRoom({ roomId: s.roomId })).room?.name === "renamed",
    },
    "room.delete": {
      attempt: (s) => verdictOf(s.actor.deleteRoom({ roomId: s.roomId })),
      tookEffect: (s) =>
        s.victim.getRoom({ roomId: s.roomId }).then(
          () => false,
          (err: unknown) => err instanceof ConnectError && err.code === Code.NotFound,
        ),
    },
    "member.add": {
      attempt: (s) =>
        verdictOf(
          s.actor.addRoomSubscriptions({ roomId: s.roomId, members: [{ profileId: s.newcomer, role: "guest" }] }),
        ),
      tookEffect: async (s) => s.newcomer in (await roles(s.victim, s.roomId)),
    },
    "member.remove": {
      attempt: (s) => verdictOf(s.actor.removeRoomSubscriptions({ roomId: s.roomId, profileIds: [s.target] })),
      tookEffect: async (s) => !(s.target in (await roles(s.victim, s.roomId))),
    },
    "member.role": {
      attempt: (s) =>
        verdictOf(s.actor.updateSubscriptionRole({ roomId: s.roomId, profileId: s.target, role: "member" })),
      tookEffect: async (s) => (await roles(s.victim, s.roomId))[s.target] === "member",
    },
    "room.retention": {
      attempt: (s) => verdictOf(s.actor.updateRoom({ roomId: s.roomId, retention: { maxEvents: 500n } })),
      tookEffect: async (s) => (await s.victim.getRoom({ roomId: s.roomId })).room?.retention?.maxEvents === 500n,
    },
  };

describe("the permission matrix", () => {
  it("is the table the product defines", () => {
    expect(ROLES).toEqual(ALL_ROLES);
    expect(MATRIX).toEqual(TABLE);
  });

  it("has a probe for every action", () => {
    expect(Object.keys(PROBES).sort()).toEqual(Object.keys(MATRIX).sort());
  });

  for (const role of ALL_ROLES) {
    for (const action of Object.keys(MATRIX) as Action[]) {
      const verdict: Verdict = MATRIX[action].includes(role) ? "allowed" : "denied";
      it(`${role}: ${action} is ${verdict}`, async () => {
        const s = await scene(role, `${role}-${action}`);
        const probe = PROBES[action];
        expect(await probe.attempt(s)).toBe(verdict);
        if (probe.tookEffect) expect(await probe.tookEffect(s)).toBe(verdict === "allowed");
      });
    }
  }
});

describe("beyond the matrix", () => {
  it("hides a group room from non-members behind NotFound", async () => {
    const s = await scene("member", "outsider");
    const eve = t.as("outsider-eve");
    const roomId = s.roomId;
    await failsWith(eve.getRoom({ roomId }), Code.NotFound);
    await failsWith(eve.getHistory({ roomId }), Code.NotFound);
    await failsWith(eve.searchRoomSubscriptions({ roomId }), Code.NotFound);
    await failsWith(eve.searchEvents({ roomId, query: "message" }), Code.NotFound);
    await failsWith(eve.updateRoom({ roomId, name: "x" }), Code.NotFound);
    await failsWith(eve.deleteRoom({ roomId }), Code.NotFound);
    await failsWith(eve.addRoomSubscriptions({ roomId, members: [{ profileId: "outsider-eve" }] }), Code.NotFound);
    await failsWith(eve.removeRoomSubscriptions({ roomId, profileIds: [s.target] }), Code.NotFound);
    await failsWith(eve.updateSubscriptionRole({ roomId, profileId: s.target, role: "member" }), Code.NotFound);
    const ack = await sendText(eve, roomId, "let me in");
    expect(ack.error?.code).toBe("not_found");
    expect(await historyOf(s)).toHaveLength(3);
  });

  it("lets only the sender edit a message, not even an owner", async () => {
    const room = await createGroup(t.as("edit-owner"), "edits", ["edit-ben"]);
    const { eventId } = await sendText(t.as("edit-ben"), room.id, "original");
    const edit = (body: string) => editEvent(room.id, eventId, body);
    const refused = await sendOne(t.as("edit-owner"), edit("forged"));
    expect(refused.error?.code).toBe("permission_denied");
    expect(refused.seq).toBe(0n);
    const message = async () =>
      (await t.as("edit-owner").getHistory({ roomId: room.id })).events.find((e) => e.id === eventId);
    expect((await message())?.content).toMatchObject({ case: "text", value: { body: "original" } });
    expect((await sendOne(t.as("edit-ben"), edit("fixed"))).error).toBeUndefined();
    expect(await message()).toMatchObject({ edited: true, content: { case: "text", value: { body: "fixed" } } });
  });

  it("lets a moderator redact another member's message", async () => {
    const room = await roomWithRoles(t.as("red-owner"), { "red-mod": "moderator", "red-m": "member" });
    const { eventId } = await sendText(t.as("red-m"), room.id, "something rude");
    expect((await sendOne(t.as("red-mod"), redactEvent(room.id, eventId))).error).toBeUndefined();
    const redacted = (await t.as("red-m").getHistory({ roomId: room.id })).events.find((e) => e.id === eventId);
    expect(redacted).toMatchObject({ redacted: true, content: { case: "text", value: { body: "" } } });
  });

  it("does not let a guest send, while the same call still delivers elsewhere", async () => {
    const quiet = await roomWithRoles(t.as("guest-owner"), { "guest-g": "guest" });
    const open = await roomWithRoles(t.as("guest-owner"), { "guest-g": "member" });
    const { ack } = await t.as("guest-g").sendEvent({
      event: [textEvent(quiet.id, "muted"), textEvent(open.id, "heard")],
    });
    expect(ack[0]?.error?.code).toBe("permission_denied");
    expect(ack[1]?.error).toBeUndefined();
    expect(ack[1]?.seq).toBe(open.lastSeq + 1n);
    const bodies = async (roomId: string) =>
      (await t.as("guest-owner").getHistory({ roomId })).events.flatMap((e) =>
        e.content.case === "text" ? [e.content.value.body] : [],
      );
    expect(await bodies(quiet.id)).toEqual([]);
    expect(await bodies(open.id)).toEqual(["heard"]);
    expect((await t.as("guest-g").getHistory({ roomId: quiet.id })).events.length).toBeGreaterThan(0);
  });
});
