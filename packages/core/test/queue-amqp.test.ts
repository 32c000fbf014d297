import { afterAll } from "vitest";
import { deleteAmqpNames } from "../src/queue/amqp.js";
import { openQueues } from "../src/queue/open.js";
import { queueContract } from "./queue-contract.js";

const uri = process.env.TEST_AMQP_URI ?? "amqp://127.0.0.1:5672";
const redeliveryMs = 1000;
const names: string[] = [];

queueContract("amqp://", {
  redeliveryMs,
  open: async () => {
    const name = `test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
    names.push(name);
    const options = { name, partitions: 4, redeliveryMs };
    const q = await openQueues(uri, options);
    const reopen = async () => {
      const again = await openQueues(uri, options);
      await again.live.close();
      return again.stream;
    };
    return { ...q, reopen };
  },
});

afterAll(async () => {
  for (const name of names.splice(0)) await deleteAmqpNames(uri, name, 4, ["g", "one", "two", "lagging"]);
});
