import { MemoryRegistry } from "../../src/registry/memory.js";
import { registryContract } from "../registry-contract.js";

registryContract("mem://", { open: async () => new MemoryRegistry() });
