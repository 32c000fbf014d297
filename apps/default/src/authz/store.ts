import type { RoomRow, SubscriptionRow } from "../db/schema.js";
import { Store } from "../db/store.js";

/** The reads of a room access check (access.ts): the live room, the caller's active membership. */
export class AccessStore extends Store {
  liveRoom(roomId: string): Promise<RoomRow | undefined> {
    return this.db
      .selectFrom("rooms")
      .selectAll()
      .where("id", "=", roomId)
      .where("deleted_at", "is", null)
      .executeTakeFirst();
  }

  activeSubscription(roomId: string, profileId: string): Promise<SubscriptionRow | undefined> {
    return this.db
      .selectFrom("room_subscriptions")
      .selectAll()
      .where("room_id", "=", roomId)
      .where("profile_id", "=", profileId)
      .where("state", "=", "active")
      .executeTakeFirst();
  }
}
