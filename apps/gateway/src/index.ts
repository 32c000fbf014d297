export * from "./deliveries.js";
export * from "./forward.js";
export * from "./gateway.js";
export * from "./protocol.js";
export type { Limits } from "./session.js";
