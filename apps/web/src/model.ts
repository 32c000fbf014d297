import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  PresenceState,
  type Resync,
  type Room,
  type RoomEvent,
  RoomType,
  type SystemContent,
  SystemEventKind,
  type TypingFrame,
} from "@service-chat/api";
import {
  type ChatClient,
  type ChatError,
  type ConnectionState,
  createChatClient,
  localStorageStore,
  type Receipt,
} from "@service-chat/sdk";
import { deviceId, type Session, TokenSource } from "./auth.js";

export interface RoomItem {
  id: string;
  type: RoomType;
  name: string;
  description: string;
  lastSeq: number;
  /** The signed-in user's read marker. */
  readSeq: number;
  /** The first seq still stored: retention removed the events before it (they are not unread). */
  firstSeq: number;
  memberCount: number;
  /** When something last happened in the room (ms), for the order of the list. */
  activity: number;
  /** Direct rooms: the other person. */
  peer?: string;
  /** Seqs after the read marker that are not messages for the reader (room changes, edits, reactions, their own). */
  quiet: Set<number>;
}

export interface PendingMessage {
  clientId: string;
  body: string;
  /** Set once the server acknowledged it (the event itself may still be on its way). */
  seq?: number;
  failed?: string;
  /** The message it answers. */
  parentId?: string;
  /** The server could not store it yet (unavailable, internal, …): the SDK is trying again. */
  retrying?: string;
}

export interface Member {
  /** Highest seq the member has read. */
  readSeq: number;
  role?: string;
  /** The room's newest seq when they joined: they never saw what came before live. */
  joinedSeq: number;
}

export interface Timeline {
  /** The room's events by seq: history pages and live events, merged. */
  events: Map<number, RoomEvent>;
  /** Messages this page sent that are not in `events` yet. */
  pending: Map<string, PendingMessage>;
  /** GetHistory's cursor for the next older page. */
  cursor: string;
  loaded: boolean;
  loading: boolean;
  done: boolean;
  /** Members, as far as known. */
  members: Map<string, Member>;
  /** Who is typing (profile id → until, ms). */
  typing: Map<string, number>;
}

const TYPING_SHOWN_MS = 6000;
const TYPING_REPEAT_MS = 3000;
const TYPING_IDLE_MS = 5000;

/**
 * Messages from others after the read marker: room changes, edits, reactions and your own do not
 * count, nor events removed by retention (before first_seq).
 */
export function unread(room: RoomItem): number {
  const from = Math.max(room.readSeq, room.firstSeq - 1);
  let quiet = 0;
  for (const seq of room.quiet) if (seq > from && seq <= room.lastSeq) quiet++;
  return Math.max(0, room.lastSeq - from - quiet);
}

/** Whether an event counts as unread for `me`: a message (not a room change, edit or reaction) from someone else. */
export function countsAsUnread(e: RoomEvent, me: string): boolean {
  const kind = e.content.case;
  const message = kind === "text" || kind === "attachment" || kind === "encrypted" || kind === "call";
  return message && e.source?.profileId !== me;
}

export function roomTitle(room: RoomItem): string {
  if (room.name) return room.name;
  return room.type === RoomType.DIRECT ? (room.peer ?? "Direct message") : "Untitled room";
}

/**
 * The chat as the page shows it: rooms with unread counts, each room's timeline, who is typing,
 * who has read what and the connection state, kept current from ChatService calls and the SDK's
 * live session. Views read the fields and re-render when `subscribe` calls them.
 */
export class ChatModel {
  readonly me: string;
  readonly chat: ChatClient;
  readonly rooms = new Map<string, RoomItem>();
  readonly timelines = new Map<string, Timeline>();
  current: string | undefined;
  connection: ConnectionState = "idle";
  roomsLoaded = false;
  /** A message for the person (an error, mostly); cleared by `dismiss`. */
  notice: string | undefined;
  /** Set when the session cannot go on (the token is refused and cannot be renewed). */
  ended: string | undefined;
  /**
   * A conversation being created: the room pane shows it at once, and what is typed into its
   * composer waits here until the room exists, then goes to that room (never to another).
   */
  draft: { title: string; queued: string[] } | undefined;
  /** What others' devices said about them: online or away (absent: not known, offline). */
  readonly presence = new Map<string, "online" | "away">();

  private readonly tokens: TokenSource;
  private readonly listeners = new Set<() => void>();
  private readonly cleanups: (() => void)[] = [];
  private readonly fetching = new Set<string>();
  private scheduled = false;
  private readTimer: ReturnType<typeof setTimeout> | undefined;
  private typingRoom: string | undefined;
  private typingSentAt = 0;
  private typingTimer: ReturnType<typeof setTimeout> | undefined;
  private lastAuthRetry = 0;
  /** The first replay is over: events from now on are news (notifications). */
  private synced = false;

  constructor(session: Session) {
    this.me = session.user;
    this.tokens = new TokenSource(session);
    this.chat = createChatClient({
      baseUrl: location.origin,
      // Renewal lives in the SDK: it says when the server refused the token it was given.
      getToken: ({ refused }) => {
        if (refused) this.tokens.invalidate();
        return this.tokens.get();
      },
      deviceId: deviceId(),
      store: localStorageStore(`chat.sdk.${session.user}`),
    });
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    const c = this.chat;
    this.cleanups.push(
      c.on("event", (e) => this.onEvent(e)),
      c.on("receipt", (r) => this.onReceipt(r)),
      c.on("typing", (t) => this.onTyping(t)),
      c.on("presence", (p) => {
        this.presence.set(p.profileId, p.state === PresenceState.ONLINE ? "online" : "away");
        this.changed();
      }),
      c.on("resync", (r) => this.onResync(r)),
      c.on("state", (s) => {
        this.connection = s;
        if (s === "live") {
          this.synced = true;
          this.chat.setPresence(document.visibilityState === "visible" ? PresenceState.ONLINE : PresenceState.AWAY);
        }
        if (s === "live" && this.notice?.startsWith("Disconnected")) this.notice = undefined;
        this.changed();
      }),
      c.on("error", (err) => this.onError(err)),
      c.on("retrying", (r) => {
        const pending = this.timelines.get(r.roomId)?.pending.get(r.clientId);
        if (!pending) return;
        pending.retrying = r.code;
        this.changed();
      }),
    );
    const onVisible = () => {
      const visible = document.visibilityState === "visible";
      this.chat.setPresence(visible ? PresenceState.ONLINE : PresenceState.AWAY);
      if (visible) this.markReadSoon();
    };
    document.addEventListener("visibilitychange", onVisible);
    const ticker = setInterval(() => this.expireTyping(), 1000);
    this.cleanups.push(
      () => document.removeEventListener("visibilitychange", onVisible),
      () => clearInterval(ticker),
    );
    void this.loadWebConfig();
    await this.loadRooms().catch((err) => this.fail("Your rooms could not be loaded", err));
    const last = localStorage.getItem(this.lastRoomKey);
    if (last && this.rooms.has(last)) this.open(last);
    this.connect();
  }

  /** Opens (or reopens) the live session. */
  connect(): void {
    this.chat.connect().catch(() => {});
  }

  /** Reconnects at once instead of waiting for the next attempt. */
  reconnectNow(): void {
    if (this.connection === "closed") this.connect();
    else this.chat.reconnectNow();
  }

  close(): void {
    this.stopTyping();
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    clearTimeout(this.readTimer);
    this.chat.close();
    this.listeners.clear();
  }

  dismiss(): void {
    this.notice = undefined;
    this.changed();
  }

  roomList(): RoomItem[] {
    return [...this.rooms.values()].sort((a, b) => b.activity - a.activity);
  }

  timeline(roomId: string): Timeline {
    let t = this.timelines.get(roomId);
    if (!t) {
      t = {
        events: new Map(),
        pending: new Map(),
        cursor: "",
        loaded: false,
        loading: false,
        done: false,
        members: new Map(),
        typing: new Map(),
      };
      this.timelines.set(roomId, t);
    }
    return t;
  }

  open(roomId: string | undefined): void {
    if (this.current !== roomId) this.stopTyping();
    this.draft = undefined;
    this.current = roomId;
    if (roomId) localStorage.setItem(this.lastRoomKey, roomId);
    else localStorage.removeItem(this.lastRoomKey);
    this.changed();
    if (!roomId) return;
    const t = this.timeline(roomId);
    if (!t.loaded) void this.loadHistory(roomId);
    void this.loadMembers(roomId);
    this.markReadSoon(0);
  }

  /** Loads the newest page of history, or with `older` the page before the oldest loaded. */
  async loadHistory(roomId: string, older = false): Promise<void> {
    const t = this.timeline(roomId);
    if (t.loading || (older && t.done)) return;
    t.loading = true;
    this.changed();
    try {
      const cursor = older ? t.cursor : "";
      const res = await this.call(() => this.chat.api.getHistory({ roomId, cursor, limit: 50 }));
      for (const e of res.events) if (!t.events.has(Number(e.seq))) this.put(t, e);
      t.cursor = res.nextCursor;
      t.done = !res.nextCursor;
      t.loaded = true;
    } catch (err) {
      this.fail("The history could not be loaded", err);
    } finally {
      t.loading = false;
      this.changed();
    }
    this.markReadSoon();
  }

  /**
   * Creates a room and opens it. Meanwhile the pane shows the new conversation (not the room that
   * was open before), and messages typed into it are sent to the new room once it exists.
   */
  async createRoom(input: { type: RoomType; name: string; members: string[] }): Promise<void> {
    this.open(undefined);
    const draft = { title: input.name || input.members[0] || "New conversation", queued: [] as string[] };
    this.draft = draft;
    this.changed();
    let room: RoomItem | undefined;
    try {
      const res = await this.call(() =>
        this.chat.api.createRoom({
          name: input.name,
          type: input.type,
          members: input.members.map((profileId) => ({ profileId })),
        }),
      );
      if (res.room) room = this.addRoom(res.room);
    } finally {
      if (this.draft === draft) this.draft = undefined;
      this.changed();
    }
    if (!room) return;
    if (input.type === RoomType.DIRECT) room.peer = input.members[0];
    if (this.current === undefined) this.open(room.id);
    for (const text of draft.queued) void this.send(room.id, text);
  }

  /** Replaces the text of one of your messages. */
  editMessage(roomId: string, eventId: string, body: string): Promise<void> {
    return this.act("The message could not be changed", () => this.chat.edit(roomId, eventId, body.trim()));
  }

  /** Deletes a message for everyone. */
  deleteMessage(roomId: string, eventId: string): Promise<void> {
    return this.act("The message could not be deleted", () => this.chat.redact(roomId, eventId));
  }

  react(roomId: string, eventId: string, key: string, add: boolean): Promise<void> {
    return this.act("The reaction could not be sent", () => this.chat.react(roomId, eventId, key, add));
  }

  /** Messages matching `query` in all rooms (or one), newest first. */
  async search(query: string, roomId = ""): Promise<RoomEvent[]> {
    const res = await this.call(() => this.chat.api.searchEvents({ query, roomId, limit: 50 }));
    return res.events;
  }

  renameRoom(roomId: string, name: string): Promise<void> {
    return this.act("The room could not be renamed", async () => {
      await this.call(() => this.chat.api.updateRoom({ roomId, name }));
      await this.fetchRoom(roomId);
    });
  }

  leaveRoom(roomId: string): Promise<void> {
    return this.act("You could not leave the room", async () => {
      await this.call(() => this.chat.api.removeRoomSubscriptions({ roomId, profileIds: [this.me] }));
      this.removeRoom(roomId);
    });
  }

  deleteRoom(roomId: string): Promise<void> {
    return this.act("The room could not be deleted", async () => {
      await this.call(() => this.chat.api.deleteRoom({ roomId }));
      this.removeRoom(roomId);
    });
  }

  removeMember(roomId: string, profileId: string): Promise<void> {
    return this.act(`${profileId} could not be removed`, async () => {
      await this.call(() => this.chat.api.removeRoomSubscriptions({ roomId, profileIds: [profileId] }));
      await this.loadMembers(roomId);
    });
  }

  setRole(roomId: string, profileId: string, role: string): Promise<void> {
    return this.act(`${profileId}'s role could not be changed`, async () => {
      await this.call(() => this.chat.api.updateSubscriptionRole({ roomId, profileId, role }));
      await this.loadMembers(roomId);
    });
  }

  /** Runs an action; a failure becomes the notice. */
  private async act(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.fail(what, err);
    }
  }

  /**
   * Sends a file: asks the deployment's upload endpoint (`uploadEndpoint` of /web-config.json) for
   * an upload URL, PUTs the bytes there, then sends an attachment event pointing at them.
   */
  attach(roomId: string, file: File): Promise<void> {
    return this.act(`${file.name} could not be sent`, async () => {
      const endpoint = this.uploadEndpoint || (await this.loadWebConfig());
      if (!endpoint) throw new Error("this server takes no attachments (no upload endpoint is set up)");
      const mimeType = file.type || "application/octet-stream";
      const asked = await fetch(new URL(endpoint, location.origin), {
        method: "POST",
        headers: { authorization: `Bearer ${await this.tokens.get()}`, "content-type": "application/json" },
        body: JSON.stringify({ filename: file.name, mimeType, sizeBytes: file.size }),
      });
      const answer = (await asked.json().catch(() => ({}))) as { uploadUrl?: string; uri?: string; error?: string };
      if (!asked.ok || !answer.uploadUrl || !answer.uri)
        throw new Error(answer.error ?? `upload refused (${asked.status})`);
      const put = await fetch(new URL(answer.uploadUrl, location.origin), {
        method: "PUT",
        headers: { "content-type": mimeType },
        body: file,
      });
      if (!put.ok) throw new Error(`the upload failed (${put.status})`);
      await this.chat.sendAttachment(roomId, { uri: answer.uri, mimeType, sizeBytes: file.size, filename: file.name });
    });
  }

  /** Where attachments are uploaded (`UPLOAD_ENDPOINT`): "" when the server takes none, undefined until known. */
  uploadEndpoint: string | undefined;

  private async loadWebConfig(): Promise<string> {
    const config = (await fetch("/web-config.json")
      .then((r) => (r.ok ? r.json() : {}))
      .catch(() => ({}))) as { uploadEndpoint?: string };
    this.uploadEndpoint = config.uploadEndpoint ?? "";
    this.changed();
    return this.uploadEndpoint;
  }

  /** Whether desktop notifications can be asked for (the browser has them and they are not decided yet). */
  get canAskNotifications(): boolean {
    return typeof Notification !== "undefined" && Notification.permission === "default";
  }

  async askNotifications(): Promise<void> {
    if (typeof Notification === "undefined") return;
    await Notification.requestPermission();
    this.changed();
  }

  /** A desktop notification for a message from someone else in a room that is not open (or a hidden page). */
  private notify(e: RoomEvent): void {
    if (typeof Notification === "undefined" || Notification.permission !== "granted") return;
    if (!countsAsUnread(e, this.me)) return;
    if (e.roomId === this.current && document.visibilityState === "visible") return;
    const room = this.rooms.get(e.roomId);
    const body =
      e.content.case === "text"
        ? e.content.value.body
        : e.content.case === "attachment"
          ? e.content.value.filename || "Attachment"
          : "New message";
    try {
      const n = new Notification(`${e.source?.profileId ?? "Someone"}${room ? ` in ${roomTitle(room)}` : ""}`, {
        body: body.slice(0, 200),
        tag: e.roomId,
      });
      n.onclick = () => {
        window.focus();
        this.open(e.roomId);
      };
    } catch {
      // Some browsers only show notifications from a service worker: nothing to do.
    }
  }

  /** Keeps a message typed into the conversation being created, until it exists. */
  queueForDraft(body: string): void {
    const text = body.trim();
    if (!this.draft || !text) return;
    this.draft.queued.push(text);
    this.changed();
  }

  async addMembers(profileIds: string[]): Promise<void> {
    const roomId = this.current;
    if (!roomId || profileIds.length === 0) return;
    await this.call(() =>
      this.chat.api.addRoomSubscriptions({ roomId, members: profileIds.map((profileId) => ({ profileId })) }),
    );
    await Promise.all([this.loadMembers(roomId), this.fetchRoom(roomId)]);
  }

  /** Sends a text message (a reply with `parentId`); it shows as pending until the server acknowledges it. */
  async send(roomId: string, body: string, clientId: string = crypto.randomUUID(), parentId = ""): Promise<void> {
    const text = body.trim();
    if (!text) return;
    this.stopTyping();
    const t = this.timeline(roomId);
    const pending: PendingMessage = { clientId, body: text, parentId };
    t.pending.set(clientId, pending);
    this.changed();
    try {
      const ack = parentId
        ? await this.chat.reply(roomId, parentId, text, clientId)
        : await this.chat.sendText(roomId, text, clientId);
      pending.seq = Number(ack.seq);
    } catch (err) {
      pending.failed = (err as Error).message || "not sent";
    }
    this.changed();
  }

  retry(roomId: string, clientId: string): void {
    const pending = this.timeline(roomId).pending.get(clientId);
    if (!pending) return;
    pending.failed = undefined;
    void this.send(roomId, pending.body, clientId, pending.parentId);
  }

  /** Tells the room's members that we are typing, at most every few seconds, and when we stop. */
  typing(roomId: string, text: string): void {
    if (!text.trim()) {
      this.stopTyping();
      return;
    }
    const now = Date.now();
    if (this.typingRoom !== roomId || now - this.typingSentAt > TYPING_REPEAT_MS) {
      this.chat.typing(roomId, true);
      this.typingRoom = roomId;
      this.typingSentAt = now;
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  /** The newest message of a room, as far as this page knows it. */
  preview(roomId: string): string | undefined {
    const t = this.timelines.get(roomId);
    if (!t) return undefined;
    let newest: RoomEvent | undefined;
    for (const e of t.events.values()) {
      if ((e.content.case === "text" || e.content.case === "attachment") && (!newest || e.seq > newest.seq)) newest = e;
    }
    if (!newest) return undefined;
    const from = newest.source?.profileId === this.me ? "You" : newest.source?.profileId;
    const c = newest.content;
    const what = newest.redacted
      ? "Message deleted"
      : c.case === "text"
        ? c.value.body
        : c.case === "attachment"
          ? c.value.filename || "Attachment"
          : "";
    return `${from}: ${what}`;
  }

  /** The people typing in a room, other than us. */
  typers(roomId: string): string[] {
    const now = Date.now();
    return [...this.timeline(roomId).typing].filter(([, until]) => until > now).map(([who]) => who);
  }

  private get lastRoomKey(): string {
    return `chat.room.${this.me}`;
  }

  private stopTyping(): void {
    clearTimeout(this.typingTimer);
    if (this.typingRoom) this.chat.typing(this.typingRoom, false);
    this.typingRoom = undefined;
    this.typingSentAt = 0;
  }

  private async loadRooms(): Promise<void> {
    let cursor = "";
    for (let page = 0; page < 10; page++) {
      const res = await this.call(() => this.chat.api.searchRooms({ cursor, limit: 100 }));
      for (const room of res.rooms) this.addRoom(room);
      cursor = res.nextCursor;
      if (!cursor) break;
    }
    this.roomsLoaded = true;
    this.changed();
    // The server counts every event after the read marker; the list counts only messages from others.
    for (const room of this.rooms.values()) if (room.lastSeq > room.readSeq) void this.countUnread(room);
  }

  private async countUnread(room: RoomItem): Promise<void> {
    try {
      const limit = Math.min(100, room.lastSeq - room.readSeq);
      const res = await this.call(() => this.chat.api.getHistory({ roomId: room.id, limit }));
      for (const e of res.events) if (!countsAsUnread(e, this.me)) room.quiet.add(Number(e.seq));
      this.changed();
    } catch {
      // The count stays the server's.
    }
  }

  private async loadMembers(roomId: string): Promise<void> {
    try {
      const res = await this.call(() => this.chat.api.searchRoomSubscriptions({ roomId, limit: 100 }));
      const t = this.timeline(roomId);
      for (const s of res.subscriptions) {
        const id = s.member?.profileId;
        if (!id) continue;
        const readSeq = Math.max(t.members.get(id)?.readSeq ?? 0, Number(s.readSeq));
        t.members.set(id, { readSeq, joinedSeq: Number(s.joinedSeq), role: s.role });
      }
      const room = this.rooms.get(roomId);
      if (room?.type === RoomType.DIRECT && !room.peer) room.peer = [...t.members.keys()].find((m) => m !== this.me);
      this.changed();
    } catch {
      // The member list is a nicety: the room works without it.
    }
  }

  private async fetchRoom(roomId: string): Promise<void> {
    if (this.fetching.has(roomId)) return;
    this.fetching.add(roomId);
    try {
      const res = await this.call(() => this.chat.api.getRoom({ roomId }));
      if (res.room) {
        const room = this.addRoom(res.room);
        if (room.lastSeq > room.readSeq) void this.countUnread(room);
      }
    } catch {
      // Not visible (any more): nothing to show.
    } finally {
      this.fetching.delete(roomId);
    }
  }

  private addRoom(room: Room): RoomItem {
    const old = this.rooms.get(room.id);
    const ms = (ts: Room["updatedAt"]) => (ts ? timestampMs(ts) : 0);
    const item: RoomItem = {
      id: room.id,
      type: room.type,
      name: room.name,
      description: room.description,
      lastSeq: Math.max(Number(room.lastSeq), old?.lastSeq ?? 0),
      readSeq: Math.max(Number(room.readSeq), old?.readSeq ?? 0),
      firstSeq: Math.max(Number(room.firstSeq), old?.firstSeq ?? 0),
      memberCount: room.memberCount,
      activity: Math.max(ms(room.updatedAt), ms(room.createdAt), old?.activity ?? 0),
      ...(old?.peer ? { peer: old.peer } : {}),
      quiet: old?.quiet ?? new Set(),
    };
    this.rooms.set(room.id, item);
    if (item.type === RoomType.DIRECT && !item.peer && !item.name) void this.loadMembers(room.id);
    this.changed();
    return item;
  }

  private removeRoom(roomId: string): void {
    this.rooms.delete(roomId);
    this.timelines.delete(roomId);
    if (this.current === roomId) this.open(undefined);
    this.changed();
  }

  /** Adds an event to a timeline and lets it act on what it points at. */
  private put(t: Timeline, e: RoomEvent): void {
    t.events.set(Number(e.seq), e);
    if (e.clientId && e.source?.profileId === this.me) t.pending.delete(e.clientId);
    const c = e.content;
    const target = (id: string) => [...t.events.values()].find((x) => x.id === id);
    if (c.case === "edit") {
      const x = target(c.value.targetEventId);
      if (x?.content.case === "text" && c.value.text) {
        x.content = { case: "text", value: c.value.text };
        x.edited = true;
      }
    } else if (c.case === "redaction") {
      const x = target(c.value.targetEventId);
      if (x) {
        x.content = { case: undefined };
        x.redacted = true;
      }
    }
  }

  private onEvent(e: RoomEvent): void {
    const seq = Number(e.seq);
    const from = e.source?.profileId ?? "";
    const t = this.timeline(e.roomId);
    this.put(t, e);
    if (from && from !== this.me) {
      t.typing.delete(from);
      this.read(t, from, seq);
    }
    const room = this.rooms.get(e.roomId);
    if (room) {
      if (!countsAsUnread(e, this.me)) room.quiet.add(seq);
      room.lastSeq = Math.max(room.lastSeq, seq);
      if (from === this.me) room.readSeq = Math.max(room.readSeq, seq);
      room.activity = Math.max(room.activity, e.serverTs ? timestampMs(e.serverTs) : Date.now());
    } else {
      void this.fetchRoom(e.roomId);
    }
    if (e.content.case === "system") this.onSystem(e.roomId, seq, e.content.value);
    else if (this.synced) this.notify(e);
    if (e.roomId === this.current) this.markReadSoon();
    this.changed();
  }

  private onSystem(roomId: string, seq: number, s: SystemContent): void {
    const t = this.timeline(roomId);
    const gone = s.kind === SystemEventKind.MEMBERS_REMOVED && s.profileIds.includes(this.me);
    if (s.kind === SystemEventKind.ROOM_DELETED || gone) {
      this.removeRoom(roomId);
      return;
    }
    if (s.kind === SystemEventKind.MEMBERS_REMOVED) {
      for (const id of s.profileIds) t.members.delete(id);
    }
    if (s.kind === SystemEventKind.MEMBERS_ADDED) {
      for (const id of s.profileIds) t.members.set(id, { readSeq: seq - 1, joinedSeq: seq - 1 });
    }
    if (this.rooms.has(roomId) && s.kind !== SystemEventKind.ROOM_CREATED) void this.fetchRoom(roomId);
  }

  private onReceipt(r: Receipt): void {
    const seq = Number(r.readSeq);
    if (r.mine) {
      const room = this.rooms.get(r.roomId);
      if (room) room.readSeq = Math.max(room.readSeq, seq);
    } else {
      this.read(this.timeline(r.roomId), r.profileId, seq);
    }
    this.changed();
  }

  private read(t: Timeline, who: string, seq: number): void {
    const m = t.members.get(who);
    if (m) m.readSeq = Math.max(m.readSeq, seq);
    else t.members.set(who, { readSeq: seq, joinedSeq: 0 });
  }

  private onTyping(f: TypingFrame): void {
    if (!f.profileId || f.profileId === this.me) return;
    const t = this.timeline(f.roomId);
    if (f.active) t.typing.set(f.profileId, Date.now() + TYPING_SHOWN_MS);
    else t.typing.delete(f.profileId);
    this.changed();
  }

  private onResync(r: Resync): void {
    const t = this.timelines.get(r.roomId);
    if (!t) return;
    t.loaded = false;
    if (r.roomId === this.current) void this.loadHistory(r.roomId);
  }

  private onError(err: ChatError): void {
    if (err.code === "cancelled") return;
    if (err.code === "unauthenticated") {
      if (Date.now() - this.lastAuthRetry > 30_000 && this.tokens.invalidate()) {
        this.lastAuthRetry = Date.now();
        this.connect();
        return;
      }
      this.end("The server no longer accepts your token. Sign in again.");
      return;
    }
    this.notice = err.code === "disconnected" ? `Disconnected: ${err.message}` : err.message;
    this.changed();
  }

  private expireTyping(): void {
    const now = Date.now();
    let changed = false;
    for (const t of this.timelines.values()) {
      for (const [who, until] of t.typing) {
        if (until <= now) {
          t.typing.delete(who);
          changed = true;
        }
      }
    }
    if (changed) this.changed();
  }

  /** Moves the read marker of the open room to its newest event, if the page is being looked at. */
  private markReadSoon(delay = 300): void {
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => {
      const room = this.current ? this.rooms.get(this.current) : undefined;
      if (!room || document.visibilityState === "hidden") return;
      const t = this.timeline(room.id);
      const newest = Math.max(room.lastSeq, ...t.events.keys());
      if (newest <= room.readSeq) return;
      room.readSeq = newest;
      this.changed();
      this.call(() => this.chat.api.markRead({ roomId: room.id, seq: BigInt(newest) }))
        .then((res) => {
          room.readSeq = Math.max(room.readSeq, Number(res.readSeq));
          this.changed();
        })
        .catch(() => {});
    }, delay);
  }

  /** A ChatService call; a refused development token is renewed once and the call repeated. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ConnectError) || err.code !== Code.Unauthenticated) throw err;
      if (!this.tokens.invalidate()) {
        this.end("The server no longer accepts your token. Sign in again.");
        throw err;
      }
      return fn();
    }
  }

  private fail(what: string, err: unknown): void {
    const message = err instanceof ConnectError ? err.rawMessage : (err as Error).message;
    this.notice = `${what}: ${message}`;
    this.changed();
  }

  private end(reason: string): void {
    this.ended = reason;
    this.changed();
  }

  private changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      for (const listener of this.listeners) listener();
    });
  }
}
