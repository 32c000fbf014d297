/** Who is signed in, kept in localStorage so a reload stays signed in. */
export interface Session {
  /** The profile id: the token's `sub`. */
  user: string;
  token: string;
  /** "dev": the token comes from POST /dev/token and is renewed there; "token": pasted, used as is. */
  mode: "dev" | "token";
}

const SESSION_KEY = "chat.session";
const DEVICE_KEY = "chat.deviceId";

export function loadSession(): Session | undefined {
  try {
    const s = JSON.parse(localStorage.getItem(SESSION_KEY) ?? "null") as Session | null;
    return s && typeof s.user === "string" && typeof s.token === "string" ? s : undefined;
  } catch {
    return undefined;
  }
}

export function saveSession(session: Session): void {
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function clearSession(): void {
  localStorage.removeItem(SESSION_KEY);
}

/** This browser's device id, made once and kept. */
export function deviceId(): string {
  let id = localStorage.getItem(DEVICE_KEY);
  if (!id) {
    id = `web-${crypto.randomUUID()}`;
    localStorage.setItem(DEVICE_KEY, id);
  }
  return id;
}

/** The claims of a JWT, unverified (the server verifies; this only reads `sub` and `exp`). */
export function claims(token: string): { sub?: string; exp?: number } {
  try {
    const part = token.split(".")[1] ?? "";
    const json = atob(
      part
        .replace(/-/g, "+")
        .replace(/_/g, "/")
        .padEnd(Math.ceil(part.length / 4) * 4, "="),
    );
    const value = JSON.parse(json) as { sub?: unknown; exp?: unknown };
    return {
      ...(typeof value.sub === "string" ? { sub: value.sub } : {}),
      ...(typeof value.exp === "number" ? { exp: value.exp } : {}),
    };
  } catch {
    return {};
  }
}

/** A development token from the embedded server's POST /dev/token. */
export async function devToken(user: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch("/dev/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sub: user, device_id: deviceId() }),
    });
  } catch {
    throw new Error("The server cannot be reached.");
  }
  const body = (await res.json().catch(() => ({}))) as { token?: string; error?: string };
  if (res.status === 404) {
    throw new Error("This server does not issue development tokens: paste a token from your identity provider.");
  }
  if (!res.ok || !body.token) throw new Error(body.error ?? `The server answered ${res.status}.`);
  return body.token;
}

/** Signs in by name (development tokens) or with a pasted token. */
export async function signIn(input: { name?: string; token?: string }): Promise<Session> {
  if (input.token !== undefined) {
    const token = input.token.trim();
    const { sub, exp } = claims(token);
    if (!sub) throw new Error("That does not look like a JWT with a `sub` claim.");
    if (exp !== undefined && exp * 1000 < Date.now()) throw new Error("That token has expired.");
    return { user: sub, token, mode: "token" };
  }
  const user = (input.name ?? "").trim();
  if (!/^\S{1,128}$/.test(user)) throw new Error("A name is 1 to 128 characters without spaces.");
  return { user, token: await devToken(user), mode: "dev" };
}

/**
 * Hands out the session's token. Development tokens are renewed when they are about to expire or
 * after the server refused them (a restarted embedded server signs with a new key).
 */
export class TokenSource {
  private refreshing: Promise<string> | undefined;
  private stale = false;

  constructor(private session: Session) {}

  get mode(): Session["mode"] {
    return this.session.mode;
  }

  /** Marks the current token as refused; answers whether a new one can be had. */
  invalidate(): boolean {
    if (this.session.mode !== "dev") return false;
    this.stale = true;
    return true;
  }

  get = async (): Promise<string> => {
    const { exp } = claims(this.session.token);
    const expiring = exp !== undefined && exp * 1000 - Date.now() < 5 * 60_000;
    if (this.session.mode !== "dev" || (!this.stale && !expiring)) return this.session.token;
    this.refreshing ??= devToken(this.session.user)
      .then((token) => {
        this.session = { ...this.session, token };
        this.stale = false;
        saveSession(this.session);
        return token;
      })
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  };
}
