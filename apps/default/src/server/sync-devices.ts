import { create } from "@bufbuild/protobuf";
import {
  type DeviceSyncResponse,
  DeviceSyncResponseSchema,
  type RoomEvent,
  type SyncDevicesRequest,
  type SyncDevicesResponse,
  SyncDevicesResponseSchema,
  type SyncRequest,
  SyncRequestSchema,
  SyncResponseSchema,
} from "@service-chat/api";
import { AppError, type Authenticator, checkCount, type Identity, unauthenticated } from "@service-chat/core";
import type { PageEvent } from "../delivery/sync-batch.js";
import type { BatchPage, SyncService } from "../delivery/sync-service.js";
import { errorDetail } from "./errors.js";

/** Devices one SyncDevices call may carry (docs/api.md). */
export const MAX_SYNC_DEVICES = 500;

/**
 * SyncDevices: each device's token is checked (the cached authenticator: a token the gateway's
 * hello already brought here costs a map lookup) and its Sync runs as the device's own would; all
 * of them go to Sync's batcher at once and are read together. A device's own failure (its token, its
 * cursors) is its answer's error; anything else (the database gone) fails the call. The batcher
 * presents each event once for every page that shows it (the same object): the answer carries it
 * once, and each page its position, so the devices of a room cost one event to encode, send and
 * decode, not one each. A caller that asks for `encoded_events` gets each event in binary, as the
 * service keeps it across calls (delivery/encoded-events.ts): the devices of a room that come in
 * different calls cost one encoding too.
 */
export async function syncDevices(
  auth: Authenticator,
  sync: SyncService,
  req: SyncDevicesRequest,
): Promise<SyncDevicesResponse> {
  checkCount("devices", req.devices.length, MAX_SYNC_DEVICES);
  const events: RoomEvent[] = [];
  const encoded: Uint8Array[] = [];
  const positions = new Map<PageEvent, number>();
  const position = (e: PageEvent): number => {
    let i = positions.get(e);
    if (i === undefined) {
      i = req.encodedEvents ? encoded.push(e.bytes) - 1 : events.push(e.event) - 1;
      positions.set(e, i);
    }
    return i;
  };
  const callers = await Promise.allSettled(
    req.devices.map(({ token }) => (token ? auth.verify(token) : Promise.reject(unauthenticated("missing token")))),
  );
  const asked: { caller: Identity; query: SyncRequest }[] = [];
  const slots: number[] = [];
  callers.forEach((c, i) => {
    if (c.status === "fulfilled") {
      asked.push({ caller: c.value, query: req.devices[i]?.request ?? create(SyncRequestSchema) });
      slots.push(i);
    }
  });
  const pages = await Promise.allSettled(sync.syncMany(asked));
  const answers: PromiseSettledResult<BatchPage>[] = callers.map((c) => c as PromiseRejectedResult);
  pages.forEach((p, k) => {
    answers[slots[k] as number] = p;
  });
  const devices = answers.map((a): DeviceSyncResponse => {
    if (a.status === "fulfilled") {
      return create(DeviceSyncResponseSchema, {
        result: { case: "response", value: create(SyncResponseSchema, { ...a.value, events: [] }) },
        eventIndexes: a.value.events.map(position),
      });
    }
    if (!(a.reason instanceof AppError)) throw a.reason;
    return create(DeviceSyncResponseSchema, { result: { case: "error", value: errorDetail(a.reason) } });
  });
  return create(SyncDevicesResponseSchema, { devices, events, encodedEvents: encoded });
}
