export * from "./deliveries.js";
export * from "./device-stream.js";
export * from "./sequencer.js";
