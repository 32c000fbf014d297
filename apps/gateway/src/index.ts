export * from "./config.js";
export * from "./forward.js";
export * from "./gateway.js";
export * from "./session/chat-port.js";
