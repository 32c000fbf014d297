export * from "./app.js";
export * from "./database.js";
export * from "./devices.js";
export * from "./events.js";
export * from "./issuer.js";
export * from "./ports.js";
export * from "./process.js";
export * from "./until.js";
