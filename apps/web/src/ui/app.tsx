import { useEffect, useMemo, useState } from "preact/hooks";
import { clearSession, loadSession, type Session, saveSession } from "../auth.js";
import { ChatModel } from "../model.js";
import { ChatScreen } from "./chat-screen.js";
import { SignIn } from "./sign-in.js";

export function App() {
  const [session, setSession] = useState<Session | undefined>(loadSession);
  const [message, setMessage] = useState<string>();
  const model = useMemo(() => (session ? new ChatModel(session) : undefined), [session]);

  useEffect(() => {
    if (!model) return;
    void model.start();
    return () => model.close();
  }, [model]);

  if (!model) {
    return (
      <SignIn
        message={message}
        onSignedIn={(s) => {
          saveSession(s);
          setMessage(undefined);
          setSession(s);
        }}
      />
    );
  }
  return (
    <ChatScreen
      model={model}
      onSignOut={(reason) => {
        clearSession();
        setMessage(reason);
        setSession(undefined);
      }}
    />
  );
}
