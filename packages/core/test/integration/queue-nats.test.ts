import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll } from "vitest";
import { openQueues } from "../../src/queue/open.js";
import { queueContract } from "../queue-contract.js";

const uri = process.env.TEST_NATS_URI ?? "nats://127.0.0.1:4222";
const redeliveryMs = 1000;
const names: string[] = [];

queueContract("nats://", {
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
    const another = async () => {
      const again = await openQueues(uri, options);
      await again.stream.close();
      return again.live;
    };
    return { ...q, reopen, another };
  },
});

afterAll(async () => {
  const nc = await connect({ servers: uri });
  try {
    const jsm = await jetstreamManager(nc);
    for (const name of names.splice(0)) await jsm.streams.delete(name).catch(() => false);
  } finally {
    await nc.close();
  }
});
