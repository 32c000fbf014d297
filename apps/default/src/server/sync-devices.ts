import { create } from "@bufbuild/protobuf";
import {
  type DeviceSyncResponse,
  DeviceSyncResponseSchema,
  type SyncDevicesRequest,
  type SyncDevicesResponse,
  SyncDevicesResponseSchema,
  SyncRequestSchema,
  SyncResponseSchema,
} from "@service-chat/api";
import { AppError, type Authenticator, checkCount, unauthenticated } from "@service-chat/core";
import type { SyncService } from "../delivery/sync-service.js";
import { errorDetail } from "./errors.js";

/** Devices one SyncDevices call may carry (docs/api.md). */
export const MAX_SYNC_DEVICES = 500;

/**
 * SyncDevices: each device's token is checked (the cached authenticator: a token the gateway's
 * hello already brought here costs a map lookup) and its Sync runs as the device's own would; all
 * of them meet in Sync's batcher and are read together. A device's own failure (its token, its
 * cursors) is its answer's error; anything else (the database gone) fails the call.
 */
export async function syncDevices(
  auth: Authenticator,
  sync: SyncService,
  req: SyncDevicesRequest,
): Promise<SyncDevicesResponse> {
  checkCount("devices", req.devices.length, MAX_SYNC_DEVICES);
  const devices = await Promise.all(
    req.devices.map(async ({ token, request }): Promise<DeviceSyncResponse> => {
      try {
        if (!token) throw unauthenticated("missing token");
        const page = await sync.sync(await auth.verify(token), request ?? create(SyncRequestSchema));
        return create(DeviceSyncResponseSchema, {
          result: { case: "response", value: create(SyncResponseSchema, page) },
        });
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        return create(DeviceSyncResponseSchema, { result: { case: "error", value: errorDetail(err) } });
      }
    }),
  );
  return create(SyncDevicesResponseSchema, { devices });
}
