import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  AckEventSchema,
  AckEventsResponseSchema,
  AddRoomSubscriptionsResponseSchema,
  type AdminService,
  type ChatService,
  CreateRoomResponseSchema,
  DeleteRoomResponseSchema,
  ErasePersonResponseSchema,
  ExportPersonResponseSchema,
  GetHistoryResponseSchema,
  GetPresenceResponseSchema,
  GetRoomResponseSchema,
  ListAuditLogResponseSchema,
  ListPushDeadLettersResponseSchema,
  MarkReadResponseSchema,
  RemoveRoomSubscriptionsResponseSchema,
  ReplayPushDeadLettersResponseSchema,
  SearchEventsResponseSchema,
  SearchRoomSubscriptionsResponseSchema,
  SearchRoomsResponseSchema,
  SendEventResponseSchema,
  SendTypingResponseSchema,
  SetPresenceResponseSchema,
  SyncResponseSchema,
  UpdateRoomResponseSchema,
  UpdateSubscriptionRoleResponseSchema,
} from "@service-chat/api";
import type { Authenticator } from "@service-chat/core";
import type { AdminService as Admin } from "../delivery/admin-service.js";
import type { PresenceService } from "../delivery/presence-service.js";
import type { SyncService } from "../delivery/sync-service.js";
import type { EventService, SendAck } from "../events/event-service.js";
import type { PersonService } from "../privacy/person-service.js";
import type { RoomService } from "../rooms/room-service.js";
import type { SubscriptionService } from "../subscriptions/subscription-service.js";
import { caller } from "./auth.js";
import { errorDetail } from "./errors.js";
import { syncDevices } from "./sync-devices.js";

export interface ChatServices {
  rooms: RoomService;
  subscriptions: SubscriptionService;
  events: EventService;
  sync: SyncService;
  presence: PresenceService;
}

/**
 * ChatService over Connect, gRPC and gRPC-Web: each handler reads the caller, calls one service
 * method. `auth` checks the token of each device of SyncDevices.
 */
export function chatHandlers(
  { rooms, subscriptions, events, sync, presence }: ChatServices,
  auth: Authenticator,
): ServiceImpl<typeof ChatService> {
  return {
    async createRoom(req, ctx) {
      return create(CreateRoomResponseSchema, { room: await rooms.create(caller(ctx), req) });
    },
    async getRoom(req, ctx) {
      return create(GetRoomResponseSchema, { room: await rooms.get(caller(ctx), req.roomId) });
    },
    async searchRooms(req, ctx) {
      const page = await rooms.search(caller(ctx), req);
      return create(SearchRoomsResponseSchema, { rooms: page.items, nextCursor: page.nextCursor });
    },
    async updateRoom(req, ctx) {
      return create(UpdateRoomResponseSchema, { room: await rooms.update(caller(ctx), req) });
    },
    async deleteRoom(req, ctx) {
      return create(DeleteRoomResponseSchema, { roomId: await rooms.delete(caller(ctx), req.roomId) });
    },
    async addRoomSubscriptions(req, ctx) {
      const subs = await subscriptions.add(caller(ctx), req.roomId, req.members);
      return create(AddRoomSubscriptionsResponseSchema, { subscriptions: subs });
    },
    async removeRoomSubscriptions(req, ctx) {
      const removed = await subscriptions.remove(caller(ctx), req.roomId, req.profileIds);
      return create(RemoveRoomSubscriptionsResponseSchema, { roomId: req.roomId, profileIds: removed });
    },
    async updateSubscriptionRole(req, ctx) {
      const sub = await subscriptions.updateRole(caller(ctx), req.roomId, req.profileId, req.role);
      return create(UpdateSubscriptionRoleResponseSchema, { subscription: sub });
    },
    async searchRoomSubscriptions(req, ctx) {
      const page = await subscriptions.search(caller(ctx), req);
      return create(SearchRoomSubscriptionsResponseSchema, { subscriptions: page.items, nextCursor: page.nextCursor });
    },
    async sendEvent(req, ctx) {
      const acks = await events.send(caller(ctx), req.event);
      return create(SendEventResponseSchema, { ack: acks.map(presentAck) });
    },
    async getHistory(req, ctx) {
      const page = await events.history(caller(ctx), req);
      return create(GetHistoryResponseSchema, {
        events: page.items,
        nextCursor: page.nextCursor,
        firstSeq: BigInt(page.firstSeq),
      });
    },
    async searchEvents(req, ctx) {
      const page = await events.search(caller(ctx), req);
      return create(SearchEventsResponseSchema, { events: page.items, nextCursor: page.nextCursor });
    },
    async ackEvents(req, ctx) {
      return create(AckEventsResponseSchema, { cursors: await sync.ack(caller(ctx), req.acks, req.deviceId) });
    },
    async markRead(req, ctx) {
      const { readSeq, unread } = await sync.markRead(caller(ctx), req.roomId, req.seq);
      return create(MarkReadResponseSchema, {
        roomId: req.roomId,
        readSeq: BigInt(readSeq),
        unreadCount: BigInt(unread),
      });
    },
    async sync(req, ctx) {
      return create(SyncResponseSchema, await sync.sync(caller(ctx), req));
    },
    async syncDevices(req, ctx) {
      caller(ctx); // the call's own token, checked as every call's
      return syncDevices(auth, sync, req);
    },
    async sendTyping(req, ctx) {
      await sync.typing(caller(ctx), req.roomId, req.active);
      return create(SendTypingResponseSchema);
    },
    async getPresence(req, ctx) {
      return create(GetPresenceResponseSchema, { presence: await presence.get(caller(ctx), req.profileIds) });
    },
    async setPresence(req, ctx) {
      await presence.set(caller(ctx), req.state);
      return create(SetPresenceResponseSchema);
    },
  };
}

/** A SendEvent answer for one event; a refusal's domain error becomes its ErrorDetail (errors.ts). */
export function presentAck(a: SendAck) {
  return create(AckEventSchema, {
    eventId: a.eventId,
    roomId: a.roomId,
    seq: BigInt(a.seq),
    clientId: a.clientId,
    ...(a.error ? { error: errorDetail(a.error) } : {}),
  });
}

/** AdminService: for the profiles of ADMIN_PROFILE_IDS (ExportPerson also for the person). */
export function adminHandlers(admin: Admin, person: PersonService): ServiceImpl<typeof AdminService> {
  return {
    async listPushDeadLetters(req, ctx) {
      const page = await admin.listDeadLetters(caller(ctx), req.cursor, req.limit);
      return create(ListPushDeadLettersResponseSchema, { deadLetters: page.items, nextCursor: page.nextCursor });
    },
    async replayPushDeadLetters(req, ctx) {
      const ids = await admin.replayDeadLetters(caller(ctx), req.ids);
      return create(ReplayPushDeadLettersResponseSchema, { replayedIds: ids });
    },
    async erasePerson(req, ctx) {
      const done = await person.erase(caller(ctx), req.profileId);
      return create(ErasePersonResponseSchema, {
        profileId: req.profileId,
        eventsRedacted: BigInt(done.eventsRedacted),
        roomsLeft: done.roomsLeft,
        directRoomsClosed: done.directRoomsClosed,
        requestedAt: timestampFromDate(done.record.requested_at),
        ...(done.record.completed_at ? { completedAt: timestampFromDate(done.record.completed_at) } : {}),
      });
    },
    async *exportPerson(req, ctx) {
      for await (const lines of person.export(caller(ctx), req.profileId)) {
        yield create(ExportPersonResponseSchema, { lines });
      }
    },
    async listAuditLog(req, ctx) {
      const page = await admin.listAudit(caller(ctx), req);
      return create(ListAuditLogResponseSchema, { entries: page.items, nextCursor: page.nextCursor });
    },
  };
}
