export * from "./deliveries.js";
export * from "./device-stream.js";
export * from "./event-wire.js";
export * from "./sequencer.js";
