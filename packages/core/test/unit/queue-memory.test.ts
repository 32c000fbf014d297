import { MemoryBus, MemoryStream } from "../../src/queue/memory.js";
import { queueContract } from "../queue-contract.js";

queueContract("mem://", {
  redeliveryMs: 0,
  open: async () => ({ stream: new MemoryStream(4), live: new MemoryBus() }),
});
