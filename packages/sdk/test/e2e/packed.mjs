// A program written against the installed packages as any user would: `node packed.mjs live|resume`.
// live: alice creates a room with bob; bob, connected, gets alice's message live; bob closes.
// resume: alice sends while bob is away; bob starts again from its saved positions and gets only that.
import { createChatClient, RoomType } from "@service-chat/sdk";
import { fileStore } from "@service-chat/sdk/node";

const { CHAT_URL, ALICE_TOKEN, BOB_TOKEN, BOB_STATE, ROOM_ID } = process.env;
const phase = process.argv[2];
const alice = createChatClient({ baseUrl: CHAT_URL, token: ALICE_TOKEN, deviceId: "alice-laptop" });
const bob = createChatClient({
  baseUrl: CHAT_URL,
  token: BOB_TOKEN,
  deviceId: "bob-phone",
  store: fileStore(BOB_STATE),
});

const seen = [];
const arrived = (body) =>
  new Promise((resolve) =>
    bob.on("event", (e) => {
      seen.push({ seq: Number(e.seq), kind: e.content.case, body: e.content.value?.body });
      if (e.content.case === "text" && e.content.value.body === body) resolve();
    }),
  );

if (phase === "live") {
  const { room } = await alice.api.createRoom({
    name: "packed",
    type: RoomType.GROUP,
    members: [{ profileId: "bob" }],
  });
  await bob.connect();
  const live = arrived("sent live");
  await alice.sendText(room.id, "sent live");
  await live;
  bob.close();
  console.log(JSON.stringify({ room: room.id, state: bob.state, seen }));
} else if (phase === "resume") {
  await alice.sendText(ROOM_ID, "sent while bob was away");
  const resumed = arrived("sent while bob was away");
  await bob.connect();
  await resumed;
  bob.close();
  console.log(JSON.stringify({ seen }));
} else {
  console.error("usage: node packed.mjs live|resume");
  process.exit(2);
}
