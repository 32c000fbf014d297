import { useEffect, useRef, useState } from "preact/hooks";
import { type Session, signIn } from "../auth.js";

export function SignIn({ message, onSignedIn }: { message?: string | undefined; onSignedIn(s: Session): void }) {
  const [withToken, setWithToken] = useState(false);
  const [name, setName] = useState("");
  const [token, setToken] = useState("");
  const [error, setError] = useState(message);
  const [busy, setBusy] = useState(false);
  const nameInput = useRef<HTMLInputElement>(null);
  useEffect(() => nameInput.current?.focus(), []);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onSignedIn(await signIn(withToken ? { token } : { name }));
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  };

  return (
    <main class="sign-in">
      <form class="card" onSubmit={submit} aria-labelledby="sign-in-title">
        <div class="brand" aria-hidden="true">
          <svg viewBox="0 0 32 32" width="40" height="40">
            <title>Service Chat</title>
            <rect width="32" height="32" rx="8" fill="currentColor" />
            <path d="M8 10h16a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2h-9l-5 4v-4H8a2 2 0 0 1-2-2v-8a2 2 0 0 1 2-2z" fill="#fff" />
          </svg>
        </div>
        <h1 id="sign-in-title">Service Chat</h1>
        {withToken ? (
          <>
            <p class="muted">Paste an access token (a JWT) issued for this server.</p>
            <label for="token">Access token</label>
            <textarea
              id="token"
              rows={4}
              required
              spellcheck={false}
              value={token}
              onInput={(e) => setToken(e.currentTarget.value)}
            />
          </>
        ) : (
          <>
            <p class="muted">Sign in with a development account: any name works.</p>
            <label for="name">Your name</label>
            <input
              id="name"
              autoComplete="username"
              ref={nameInput}
              required
              maxLength={128}
              pattern="\S+"
              title="A name without spaces"
              placeholder="alice"
              value={name}
              onInput={(e) => setName(e.currentTarget.value)}
            />
          </>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button class="primary" type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <button
          class="link"
          type="button"
          onClick={() => {
            setWithToken(!withToken);
            setError(undefined);
          }}
        >
          {withToken ? "Sign in with a name instead" : "Use an access token instead"}
        </button>
      </form>
    </main>
  );
}
