import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ContactLinkSchema, type RoomSubscription, RoomSubscriptionSchema } from "@service-chat/api";
import type { SubscriptionRow } from "../db/schema.js";

export function presentSubscription(row: SubscriptionRow): RoomSubscription {
  return create(RoomSubscriptionSchema, {
    roomId: row.room_id,
    member: create(ContactLinkSchema, {
      profileId: row.profile_id,
      contactId: row.contact_id,
      profileName: row.profile_name,
    }),
    role: row.role,
    state: row.state,
    joinedAt: timestampFromDate(row.joined_at),
    joinedSeq: BigInt(row.joined_seq),
    readSeq: BigInt(row.read_seq),
  });
}
