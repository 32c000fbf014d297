export * from "@service-chat/api";
export * from "./client.js";
export * from "./messages.js";
export * from "./retry.js";
export * from "./store.js";
