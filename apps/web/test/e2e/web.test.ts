import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { get } from "node:http";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ClientFrameSchema, RoomEventType, RoomType, ServerFrameSchema } from "@service-chat/api";
import { startTestApp, type TestApp, UNTIL_TIMEOUT_MS } from "@service-chat/testing";
import { type Browser, type BrowserContext, chromium, type Page, type WebSocket } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const WEB = fileURLToPath(new URL("../..", import.meta.url));
const SHOTS = join(WEB, "test-results");
const CHROMIUM = "/usr/bin/chromium";

/** One person at one browser: a context of their own (own localStorage, own device id). */
interface Person {
  name: string;
  /** Where this person's browser reaches the server. */
  url: string;
  context: BrowserContext;
  page: Page;
}

/**
 * A TCP relay to the server whose connections can be cut, like a network that goes away: the
 * browser's WebSocket dies and reconnect attempts fail until `restore`. (Emulating offline in the
 * browser fails new requests but leaves an open WebSocket alone.)
 */
async function relay(target: string) {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let down = false;
  const server = createServer((client) => {
    if (down) return void client.destroy();
    const upstream = connect(Number(port), hostname);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(a);
      a.on("error", () => {});
      a.on("close", () => {
        sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      down = false;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let t: TestApp;
let network: Awaited<ReturnType<typeof relay>>;
let browser: Browser;
let uploads: string;
let alice: Person;
let bob: Person;
const logs: string[] = [];

describe("web chat", () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
    // Builds apps/web/dist if it is missing or older than its sources (fails the test if it cannot).
    await promisify(execFile)(process.execPath, [join(WEB, "scripts/ensure-built.mjs"), "--strict"]);
    await mkdir(SHOTS, { recursive: true });
    uploads = await mkdtemp(join(tmpdir(), "chat-web-uploads-"));
    t = await startTestApp({ DEV_UPLOADS_DIR: uploads });
    network = await relay(t.httpUrl);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // Playwright starts the browser on a fresh temporary profile (--user-data-dir) of its own.
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    alice = await person("alice", t.httpUrl);
    bob = await person("bob", network.url);
  });

  afterAll(async () => {
    await browser?.close();
    network?.cut();
    await network?.close();
    await t?.stop();
    if (uploads) await rm(uploads, { recursive: true, force: true });
  });

  async function person(name: string, url: string): Promise<Person> {
    const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
    context.setDefaultTimeout(UNTIL_TIMEOUT_MS); // waits for what the page shows; a loaded machine takes longer
    const page = await context.newPage();
    watch(name, page);
    return { name, url, context, page };
  }

  function watch(name: string, page: Page): void {
    page.on("pageerror", (err) => logs.push(`${name}: page error: ${err.message}`));
    page.on("console", (msg) => {
      // The browser reports failed connections itself while the network is down; those are expected.
      if (
        msg.type() === "error" &&
        !/net::ERR_|Failed to load resource|WebSocket connection to .* failed/.test(msg.text())
      ) {
        logs.push(`${name}: console: ${msg.text()}`);
      }
    });
  }

  const shot = (p: Person, name: string) => p.page.screenshot({ path: join(SHOTS, `${name}.png`) });
  const connection = (p: Person) => p.page.getByRole("status", { name: /^Connection:/ });
  const composer = (p: Person) => p.page.getByLabel("Message", { exact: true });
  const roomButton = (p: Person, name: string) => p.page.getByRole("button", { name: new RegExp(name) });
  const message = (p: Person, text: string) => p.page.locator(".messages .message", { hasText: text });

  /** The status of a GET of exactly this path (fetch would normalise the dots away). */
  function rawStatus(path: string): Promise<number | undefined> {
    return new Promise((resolve, reject) => {
      get({ host: "127.0.0.1", port: new URL(t.httpUrl).port, path }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).on("error", reject);
    });
  }

  async function send(p: Person, text: string): Promise<void> {
    await composer(p).fill(text);
    await composer(p).press("Enter");
    // Shown at once (pending), then acknowledged: no "Sending…" left on it.
    await message(p, text).waitFor();
    await expect.poll(() => message(p, text).locator(".meta").textContent()).not.toMatch(/Sending|Not sent/);
  }

  /**
   * Stops the clock of this person's browser (installed with `context.clock.install`) where it
   * stands: from then on its timers fire only when the test moves it. Pausing needs a time not yet
   * passed: the browser's clock is read first, and read again if it passed that time meanwhile.
   */
  async function pauseClock(p: Person): Promise<void> {
    for (;;) {
      const now = await p.page.evaluate(() => Date.now());
      try {
        return await p.context.clock.pauseAt(now + 1_000);
      } catch (err) {
        if (!String(err).includes("to the past")) throw err;
      }
    }
  }

  it("serves the web chat at /, with cache headers and no way out of its folder", async () => {
    const index = await fetch(`${t.httpUrl}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(index.headers.get("cache-control")).toBe("no-cache");
    const html = await index.text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${t.httpUrl}${script}`);
    expect(asset.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(asset.headers.get("cache-control")).toContain("immutable");
    const paths = [
      "/../package.json",
      "/..%2fpackage.json",
      "/%2e%2e/%2e%2e/package.json",
      "/.inputs.json",
      "/nope.js",
    ];
    for (const path of paths) expect(await rawStatus(path), path).toBe(404);
    expect((await fetch(`${t.httpUrl}/healthz`)).status).toBe(200);
  });

  it("signs two people in by name", async () => {
    for (const p of [alice, bob]) {
      await p.page.goto(p.url);
      if (p === alice) await shot(p, "01-sign-in");
      await p.page.getByLabel("Your name").fill(p.name);
      await p.page.getByRole("button", { name: "Sign in", exact: true }).click();
      await connection(p).getByText("Connected").waitFor();
      await p.page.getByText(`Welcome, ${p.name}`).waitFor();
    }
  });

  it("alice creates a room with bob; bob sees it appear with unread messages", async () => {
    await alice.page.getByRole("button", { name: "New conversation" }).click();
    await alice.page.getByLabel("Room name").fill("Weekend plans");
    await alice.page.getByLabel("Members").fill("bob");
    await alice.page.getByRole("button", { name: "Create room" }).click();
    await alice.page.getByRole("heading", { name: "Weekend plans" }).waitFor();
    await alice.page.getByText("you created the room").waitFor();

    await roomButton(bob, "Weekend plans").waitFor();
    await send(alice, "Hi Bob! Are you around this weekend?");
    // The room's creation (a room change) is not counted: one message, one unread.
    await roomButton(bob, "Weekend plans").getByRole("img", { name: "1 unread" }).waitFor();
    await shot(bob, "02-room-list-unread");
  });

  it("bob opens the room and reads; alice sees the receipt", async () => {
    await roomButton(bob, "Weekend plans").click();
    await message(bob, "Hi Bob! Are you around this weekend?").waitFor();
    await expect.poll(() => roomButton(bob, "Weekend plans").getByRole("img").count()).toBe(0);
    await alice.page.getByText("Seen by bob").waitFor();
  });

  it("bob sees alice typing, and they talk both ways", async () => {
    await composer(alice).pressSequentially("Let me check my cal", { delay: 20 });
    await bob.page.getByText("alice is typing…").waitFor();
    await shot(bob, "03-typing");
    await composer(alice).press("Enter");
    await message(bob, "Let me check my cal").waitFor();
    await expect.poll(() => bob.page.getByText("alice is typing…").count()).toBe(0);

    await send(bob, "Saturday works for me. Hiking?");
    await message(alice, "Saturday works for me. Hiking?").waitFor();
    await send(alice, "Hiking it is. I'll bring the map");
    await message(bob, "Hiking it is. I'll bring the map").waitFor();
    await message(alice, "Hiking it is. I'll bring the map").getByText("Seen by bob").waitFor();
    await shot(alice, "04-conversation");
  });

  it("a reload keeps alice signed in and shows the history", async () => {
    await alice.page.reload();
    await connection(alice).getByText("Connected").waitFor();
    await alice.page.getByRole("heading", { name: "Weekend plans" }).waitFor();
    const texts = await alice.page.locator(".messages .message .body").allInnerTexts();
    expect(texts).toEqual([
      "Hi Bob! Are you around this weekend?",
      "Let me check my cal",
      "Saturday works for me. Hiking?",
      "Hiking it is. I'll bring the map",
    ]);
    await alice.page.getByText("Seen by bob").waitFor();
  });

  it("applies edits, deletions and reactions to the messages they point at", async () => {
    const roomId = (await roomButton(alice, "Weekend plans").getAttribute("data-room-id")) as string;
    const { events } = await t.as("bob").getHistory({ roomId });
    const id = (body: string) =>
      events.find((e) => e.content.case === "text" && e.content.value.body === body)?.id as string;
    await t.as("bob").sendEvent({
      event: [
        {
          roomId,
          type: RoomEventType.EDIT,
          content: {
            case: "edit",
            value: { targetEventId: id("Saturday works for me. Hiking?"), text: { body: "Saturday works. Hiking?" } },
          },
        },
        {
          roomId,
          type: RoomEventType.REACTION,
          content: {
            case: "reaction",
            value: { targetEventId: id("Hi Bob! Are you around this weekend?"), key: "👍", add: true },
          },
        },
      ],
    });
    await t.as("alice").sendEvent({
      event: [
        {
          roomId,
          type: RoomEventType.REDACTION,
          content: { case: "redaction", value: { targetEventId: id("Let me check my cal") } },
        },
      ],
    });
    await message(alice, "Saturday works. Hiking?").getByText("edited").waitFor();
    await message(alice, "Hi Bob! Are you around").locator(".reaction", { hasText: "👍 1" }).waitFor();
    await message(bob, "Message deleted").waitFor();
    expect(await message(bob, "Let me check my cal").count()).toBe(0);
  });

  it("bob loses the network, alice sends three messages, bob comes back and gets them in order", async () => {
    await bob.context.setOffline(true);
    network.cut();
    await connection(bob).getByText("Reconnecting…").waitFor();
    await bob.page.getByText("Connection lost").waitFor();
    const sent = ["Trail starts at 9", "Bring water", "And snacks!"];
    for (const text of sent) await send(alice, text);
    // What bob sends meanwhile waits, shown as pending, and goes out when he is back.
    await composer(bob).fill("Sorry, I was in a tunnel");
    await composer(bob).press("Enter");
    await message(bob, "Sorry, I was in a tunnel").getByText("Sending…").waitFor();
    await shot(bob, "05-offline");
    expect(await message(bob, sent[0] as string).count()).toBe(0);

    network.restore();
    await bob.context.setOffline(false);
    await connection(bob).getByText("Connected").waitFor();
    for (const text of sent) await message(bob, text).waitFor();
    await expect
      .poll(() => message(bob, "Sorry, I was in a tunnel").locator(".meta").textContent())
      .not.toMatch(/Sending/);
    const texts = await bob.page.locator(".messages .message .body").allInnerTexts();
    expect(texts.slice(-4)).toEqual([...sent, "Sorry, I was in a tunnel"]);
    await message(alice, "Sorry, I was in a tunnel").waitFor();
    const atAlice = await alice.page.locator(".messages .message .body").allInnerTexts();
    expect(atAlice.slice(-4)).toEqual([...sent, "Sorry, I was in a tunnel"]);
    await message(alice, "And snacks!").getByText("Seen by bob").waitFor();
    await shot(bob, "06-back-online");
  });

  it("bob closes the page; what alice sends meanwhile is there when he opens it again", async () => {
    // The SDK saves its state (positions, unsent messages) shortly after each change: let it.
    await bob.page.waitForFunction("JSON.parse(localStorage.getItem('chat.sdk.bob') ?? '{}').outbox?.length === 0");
    await bob.page.close();
    await send(alice, "See you Saturday!");
    bob.page = await bob.context.newPage();
    watch(bob.name, bob.page);
    await bob.page.goto(bob.url);
    await connection(bob).getByText("Connected").waitFor();
    await bob.page.getByRole("heading", { name: "Weekend plans" }).waitFor();
    await message(bob, "See you Saturday!").waitFor();
    const texts = await bob.page.locator(".messages .message .body").allInnerTexts();
    expect(texts.slice(-3)).toEqual(["And snacks!", "Sorry, I was in a tunnel", "See you Saturday!"]);
  });

  it("after a long outage bob is back with what was sent meanwhile, and 'Reconnect now' reconnects at once", async () => {
    // bob's browser runs on a clock this test moves: a reconnect delay ends only when the test says.
    // (The delays themselves, doubling up to their cap with jitter, are the SDK's unit tests.)
    const attempts: WebSocket[] = [];
    const attempted = (ws: WebSocket) => attempts.push(ws);
    bob.page.on("websocket", attempted);
    await bob.context.clock.install();
    await pauseClock(bob);
    network.cut();
    await connection(bob).getByText("Reconnecting…").waitFor();
    const meanwhile = ["Forecast says rain", "Bring a jacket"];
    for (const text of meanwhile) await send(alice, text);
    // A long outage: attempt after attempt fails while the delay grows to its cap.
    const before = attempts.length;
    while (attempts.length < before + 8) await bob.context.clock.runFor(1_000);
    network.restore();
    await bob.context.clock.resume();
    await connection(bob).getByText("Connected").waitFor();
    for (const text of meanwhile) await message(bob, text).waitFor();
    const texts = await bob.page.locator(".messages .message .body").allInnerTexts();
    expect(texts.slice(-3)).toEqual(["See you Saturday!", ...meanwhile]);

    // With the clock stopped no delay ever ends: only the click can bring bob back.
    await pauseClock(bob);
    network.cut();
    await connection(bob).getByText("Reconnecting…").waitFor();
    network.restore();
    await bob.page.getByRole("button", { name: "Reconnect now" }).click();
    await connection(bob).getByText("Connected").waitFor();
    await bob.context.clock.resume();
    bob.page.off("websocket", attempted);
    await send(alice, "Still there?");
    await message(bob, "Still there?").waitFor();
  });

  it("starts a direct message and adds members to a group", async () => {
    await alice.page.getByRole("button", { name: "New conversation" }).click();
    await alice.page.getByText("Direct message", { exact: true }).click();
    await alice.page.getByLabel("Person").fill("bob");
    await alice.page.getByRole("button", { name: "Start chat" }).click();
    await alice.page.getByRole("heading", { name: "bob" }).waitFor();
    await send(alice, "Just between us: bring the good snacks");
    await roomButton(bob, "alice")
      .getByRole("img", { name: /unread/ })
      .waitFor();

    await roomButton(alice, "Weekend plans").click();
    await alice.page.getByRole("button", { name: "Add people" }).click();
    await alice.page.getByLabel("People to add").fill("carol");
    await alice.page.getByRole("button", { name: "Add", exact: true }).click();
    await alice.page.getByText("you added carol").waitFor();
    await alice.page.getByText("alice, bob and carol").waitFor();
    // carol joined after the last message: she has not seen it.
    await message(alice, "Still there?").getByText("Seen by bob", { exact: true }).waitFor();
    await shot(alice, "07-added-member");
  });

  it("text typed while a new chat is being created goes to that chat, not to the room open before", async () => {
    await roomButton(alice, "Weekend plans").click();
    await alice.page.getByRole("heading", { name: "Weekend plans" }).waitFor();
    // Hold CreateRoom until the text has been typed and sent, as a slow server would.
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    let asked = false;
    await alice.page.route("**/chat.v1.ChatService/CreateRoom", async (route) => {
      if (!asked) {
        asked = true;
        await held;
      }
      await route.continue();
    });
    await alice.page.getByRole("button", { name: "New conversation" }).click();
    await alice.page.getByText("Direct message", { exact: true }).click();
    await alice.page.getByLabel("Person").fill("dave");
    await alice.page.getByRole("button", { name: "Start chat" }).click();
    await expect.poll(() => asked).toBe(true);
    await composer(alice).fill("For dave only");
    await composer(alice).press("Enter");
    release();
    await alice.page.getByRole("heading", { name: "dave" }).waitFor();
    await alice.page.unroute("**/chat.v1.ChatService/CreateRoom");
    const weekend = (await roomButton(alice, "Weekend plans").getAttribute("data-room-id")) as string;
    const dave = (await roomButton(alice, "^dave").getAttribute("data-room-id")) as string;
    const bodies = async (roomId: string) =>
      (await t.as("alice").getHistory({ roomId })).events.map((e) =>
        e.content.case === "text" ? e.content.value.body : "",
      );
    await expect.poll(() => bodies(weekend).then((b) => b.length)).toBeGreaterThan(0);
    expect(await bodies(weekend)).not.toContain("For dave only");
    await expect.poll(() => bodies(dave)).toContain("For dave only");
    await expect.poll(() => message(alice, "For dave only").locator(".meta").textContent()).not.toMatch(/Sending/);
    await roomButton(alice, "Weekend plans").click();
    await alice.page.getByRole("heading", { name: "Weekend plans" }).waitFor();
    expect(await message(alice, "For dave only").count()).toBe(0);
  });

  it("carol signs in with a pasted token on a phone-sized screen and finds the room she was added to", async () => {
    const carol = await person("carol", t.httpUrl);
    await carol.page.setViewportSize({ width: 390, height: 760 });
    await carol.page.goto(carol.url);
    await carol.page.getByRole("button", { name: "Use an access token instead" }).click();
    await carol.page.getByLabel("Access token").fill(await t.signer.sign({ sub: "carol" }));
    await carol.page.getByRole("button", { name: "Sign in", exact: true }).click();
    await roomButton(carol, "Weekend plans").click();
    await carol.page.getByText("alice added you").waitFor();
    await message(carol, "See you Saturday!").waitFor();
    await shot(carol, "08-phone");
    await carol.page.getByRole("button", { name: "Back to conversations" }).click();

    // A room with a long past: what came before carol joined is paged in from the history.
    const api = t.as("alice");
    const { room } = await api.createRoom({ name: "Long story", type: RoomType.GROUP });
    const roomId = room?.id as string;
    const lines = Array.from({ length: 70 }, (_, i) => `line ${i + 1}`);
    await api.sendEvent({
      event: lines.map((body) => ({ roomId, type: RoomEventType.TEXT, content: { case: "text", value: { body } } })),
    });
    await api.addRoomSubscriptions({ roomId, members: [{ profileId: "carol" }] });
    await roomButton(carol, "Long story").click();
    await message(carol, "line 70").waitFor();
    expect(await carol.page.locator(".messages .message").count()).toBeLessThan(70);
    await carol.page.getByRole("button", { name: "Load older messages" }).click();
    await carol.page.getByText("This is the beginning of the conversation.").waitFor();
    expect(await carol.page.locator(".messages .message .body").allInnerTexts()).toEqual(lines);
    await carol.context.close();
  });

  describe("everyday actions", () => {
    /** A button among a message's actions (shown on hover). */
    async function act(p: Person, text: string, name: string | RegExp) {
      const m = message(p, text);
      await m.hover();
      await m.getByRole("group", { name: "Message actions" }).getByRole("button", { name, exact: true }).click();
    }
    const reaction = (p: Person, text: string, label: string) =>
      message(p, text).getByRole("button", { name: label, exact: true });

    it("both open the room; alice replies to bob with a quote", async () => {
      for (const p of [alice, bob]) {
        await roomButton(p, "Weekend plans").click();
        await p.page.getByRole("heading", { name: "Weekend plans" }).waitFor();
      }
      await send(bob, "Who brings the tent?");
      await message(alice, "Who brings the tent?").waitFor();
      await act(alice, "Who brings the tent?", "Reply");
      await alice.page.getByText("Replying to bob").waitFor();
      await send(alice, "I will bring it");
      const quoted = message(bob, "I will bring it").getByRole("blockquote");
      await quoted.getByText("Who brings the tent?").waitFor();
      await shot(bob, "09-reply");
    });

    it("alice edits her message and bob sees the new text live", async () => {
      await send(alice, "Meet at 8");
      await message(bob, "Meet at 8").waitFor();
      await act(alice, "Meet at 8", "Edit");
      await alice.page.getByLabel("New text").fill("Meet at 9");
      await alice.page.getByRole("button", { name: "Save" }).click();
      await message(bob, "Meet at 9").getByText("edited").waitFor();
      expect(await message(bob, "Meet at 8").count()).toBe(0);
    });

    it("reactions show counts and who, live on both pages, and come off again", async () => {
      await act(bob, "Meet at 9", "React 👍");
      await reaction(alice, "Meet at 9", "👍 1: bob").waitFor();
      await act(alice, "Meet at 9", "React 👍");
      await reaction(bob, "Meet at 9", "👍 2: alice, bob").waitFor();
      await reaction(alice, "Meet at 9", "👍 2: alice, bob").click(); // alice takes hers back
      await reaction(bob, "Meet at 9", "👍 1: bob").waitFor();
      await shot(alice, "10-reactions");
    });

    it("alice deletes her message and bob sees it go", async () => {
      await act(alice, "I will bring it", "Delete");
      await message(alice, "I will bring it").getByRole("button", { name: "Delete for everyone" }).click();
      await expect.poll(() => message(bob, "I will bring it").count()).toBe(0);
      await message(bob, "Message deleted").first().waitFor();
    });

    it("makes http and https links clickable, nothing else, and separates days", async () => {
      await send(alice, "Map: https://maps.example.com/trail?id=7 (not javascript:alert(1))");
      const link = message(bob, "Map:").getByRole("link");
      await expect.poll(() => link.getAttribute("href")).toBe("https://maps.example.com/trail?id=7");
      expect(await link.count()).toBe(1);
      await bob.page.locator(".messages .day", { hasText: "Today" }).first().waitFor();
    });

    it("finds a message by search and opens its room", async () => {
      await roomButton(alice, "^bob").click();
      await alice.page.getByRole("heading", { name: "bob" }).waitFor();
      const search = alice.page.getByRole("searchbox", { name: "Search messages" });
      await search.fill("tent");
      await search.press("Enter");
      const result = alice.page.getByRole("list", { name: "Search results" }).getByRole("button", { name: /tent/ });
      await result.first().click();
      await alice.page.getByRole("heading", { name: "Weekend plans" }).waitFor();
    });

    it("the member panel shows roles and presence, and lets the owner change a role and remove someone", async () => {
      await alice.page.getByRole("button", { name: "Members", exact: true }).click();
      const panel = alice.page.getByRole("region", { name: "Members" });
      await panel.locator("[data-member=bob]").getByRole("img", { name: "online" }).waitFor();
      await panel.getByLabel("Role of carol").selectOption("moderator");
      await alice.page.getByText("you made carol moderator").waitFor();
      await panel.getByRole("button", { name: "Remove carol" }).click();
      await alice.page.getByText("you removed carol").waitFor();
      await expect.poll(() => panel.locator("[data-member=carol]").count()).toBe(0);
      await shot(alice, "11-members");
      await alice.page.getByRole("button", { name: "Members", exact: true }).click();
    });

    it("sends an image and a file; the other page shows the image inline and the file as a download", async () => {
      const png = Buffer.from(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
        "base64",
      );
      await alice.page
        .getByLabel("Attach a file")
        .setInputFiles({ name: "dot.png", mimeType: "image/png", buffer: png });
      const img = bob.page.locator(".messages img[alt='dot.png']");
      await img.waitFor();
      await expect
        .poll(() =>
          img.evaluate((el) => {
            const image = el as unknown as { complete: boolean; naturalWidth: number };
            return image.complete && image.naturalWidth;
          }),
        )
        .toBe(1);
      await alice.page
        .getByLabel("Attach a file")
        .setInputFiles({ name: "packing list.txt", mimeType: "text/plain", buffer: Buffer.from("tent\nmap\n") });
      const file = bob.page.getByRole("link", { name: "packing list.txt" });
      await file.waitFor();
      const res = await fetch((await file.getAttribute("href")) as string);
      expect(res.headers.get("content-disposition")).toMatch(/^attachment/);
      expect(await res.text()).toBe("tent\nmap\n");
      await shot(bob, "12-attachments");
    });

    it("renames a room; bob sees the new name", async () => {
      await alice.page.getByRole("button", { name: "Room settings" }).click();
      await alice.page.getByLabel("Room name").fill("Weekend trip");
      await alice.page.getByRole("button", { name: "Rename" }).click();
      await bob.page.getByRole("heading", { name: "Weekend trip" }).waitFor();
    });

    it("bob leaves a room and alice deletes another; both disappear from the lists", async () => {
      const api = t.as("alice");
      await api.createRoom({ name: "Leave me", type: RoomType.GROUP, members: [{ profileId: "bob" }] });
      await api.createRoom({ name: "Delete me", type: RoomType.GROUP, members: [{ profileId: "bob" }] });
      await roomButton(bob, "Leave me").click();
      await bob.page.getByRole("button", { name: "Room settings" }).click();
      await bob.page.getByRole("button", { name: "Leave room" }).click();
      await expect.poll(() => roomButton(bob, "Leave me").count()).toBe(0);

      await roomButton(alice, "Delete me").click();
      await alice.page.getByRole("button", { name: "Room settings" }).click();
      await alice.page.getByRole("button", { name: "Delete room" }).click();
      await alice.page.getByRole("button", { name: "Delete for everyone" }).click();
      await expect.poll(() => roomButton(alice, "Delete me").count()).toBe(0);
      await expect.poll(() => roomButton(bob, "Delete me").count()).toBe(0);
    });

    it("scrolling up loads older messages by itself", async () => {
      await roomButton(alice, "Long story").click();
      const line = (n: number) =>
        alice.page.locator(".messages .message .body", { hasText: new RegExp(`^line ${n}$`) });
      await line(70).waitFor();
      const list = alice.page.getByRole("list", { name: "Messages" });
      await expect
        .poll(async () => {
          await list.evaluate((el) => {
            el.scrollTop = 0;
            el.dispatchEvent(new Event("scroll"));
          });
          return alice.page.getByText("This is the beginning of the conversation.").count();
        })
        .toBe(1);
      await line(1).waitFor();
    });

    it("shows a desktop notification for a message in a room that is not open", async () => {
      await bob.context.grantPermissions(["notifications"]);
      await bob.page.addInitScript(() => {
        const seen: { title: string; body: string }[] = [];
        (globalThis as unknown as { notes: typeof seen }).notes = seen;
        class Recorded {
          static permission = "granted";
          static requestPermission = async () => "granted";
          onclick: (() => void) | null = null;
          constructor(title: string, options?: { body?: string }) {
            seen.push({ title, body: options?.body ?? "" });
          }
        }
        (globalThis as unknown as { Notification: unknown }).Notification = Recorded;
      });
      await bob.page.reload();
      await connection(bob).getByText("Connected").waitFor();
      await roomButton(bob, "Weekend trip").click();
      await bob.page.getByRole("heading", { name: "Weekend trip" }).waitFor();
      await roomButton(alice, "^bob").click();
      await send(alice, "Psst, a surprise for the others");
      await expect
        .poll(() =>
          bob.page.evaluate(() => (globalThis as unknown as { notes: { title: string; body: string }[] }).notes),
        )
        .toEqual([{ title: "alice in alice", body: "Psst, a surprise for the others" }]);
      // Nothing for the room bob has open.
      await roomButton(alice, "Weekend trip").click();
      await send(alice, "Back to planning");
      await message(bob, "Back to planning").waitFor();
      expect(await bob.page.evaluate(() => (globalThis as unknown as { notes: unknown[] }).notes.length)).toBe(1);
    });
  });

  it("a message the server cannot store yet shows 'Retrying…' and goes out by itself, once", async () => {
    const erin = await person("erin", t.httpUrl);
    // Between erin's page and the server: while `failing`, sends are refused as `unavailable`.
    let failing = true;
    let refused = 0;
    await erin.page.routeWebSocket(/\/ws$/, (ws) => {
      const server = ws.connectToServer();
      server.onMessage((m) => ws.send(m));
      ws.onMessage((m) => {
        const frame = typeof m === "string" ? undefined : fromBinary(ClientFrameSchema, new Uint8Array(m));
        if (!failing || frame?.frame.case !== "send") return server.send(m);
        // Not passed on: answered as a server without its database answers, nothing stored.
        refused++;
        const { clientId, roomId } = frame.frame.value;
        const ack = create(ServerFrameSchema, {
          requestId: frame.requestId,
          frame: {
            case: "ack",
            value: { clientId, roomId, error: { code: "unavailable", message: "the database is not reachable" } },
          },
        });
        ws.send(Buffer.from(toBinary(ServerFrameSchema, ack)));
      });
    });
    const { room } = await t.as("alice").createRoom({
      name: "Retry room",
      type: RoomType.GROUP,
      members: [{ profileId: "erin" }],
    });
    await erin.page.goto(erin.url);
    await erin.page.getByLabel("Your name").fill("erin");
    await erin.page.getByRole("button", { name: "Sign in", exact: true }).click();
    await connection(erin).getByText("Connected").waitFor();
    await roomButton(erin, "Retry room").click();
    await composer(erin).fill("Stored once, in the end");
    await composer(erin).press("Enter");
    await message(erin, "Stored once, in the end")
      .getByText(/^Retrying…/)
      .waitFor();
    await shot(erin, "13-retrying");
    expect(refused).toBeGreaterThan(0);
    failing = false;
    await expect
      .poll(() => message(erin, "Stored once, in the end").locator(".meta").textContent())
      .not.toMatch(/Retrying|Sending|Not sent/);
    const { events } = await t.as("alice").getHistory({ roomId: room?.id as string });
    const bodies = events.map((e) => (e.content.case === "text" ? e.content.value.body : ""));
    expect(bodies.filter((b) => b === "Stored once, in the end")).toHaveLength(1);
    await erin.context.close();
  });

  it("shows no page errors", () => {
    expect(logs).toEqual([]);
  });
});
