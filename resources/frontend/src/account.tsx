// The home page's account panel: Cortex's "Sign in" where it answers, "Sign out" once signed in,
// and, for an app server alone, a pasted access token kept for this tab only. In the library,
// not the scaffolded pages, so that every app's sign-in gets its fixes at once.
import { useState } from "react";
import type { FormEvent } from "react";

import { resumeSession, sessionToken, signIn, signInAvailable, signOut } from "./session.js";
import type { SessionOptions } from "./session.js";

/** Where the session stands when the page loads. */
export interface SessionState {
  /** Cortex's sign-in is reachable from this page. */
  available: boolean;
  signedIn: boolean;
  error?: string | undefined;
}

/** Where a pasted token is kept (this tab's `sessionStorage`). */
const PASTED_TOKEN = "prefiq.token";

/** The token pasted in an earlier page of this tab, if any. */
export const pastedToken = (): string | undefined => sessionStorage.getItem(PASTED_TOKEN) ?? undefined;

/** The token calls go with: the signed-in session's, else a pasted one. */
export const currentToken = (): string | undefined => sessionToken() ?? pastedToken();

/** Picks the session up as the page loads (see `resumeSession`), and says whether Cortex is there. */
export async function startSession(options: SessionOptions): Promise<SessionState> {
  const available = await signInAvailable();
  try {
    return { available, signedIn: await resumeSession(options) };
  } catch (error) {
    return { available, signedIn: false, error: error instanceof Error ? error.message : String(error) };
  }
}

export function Account({ session, options }: { session: SessionState; options: SessionOptions }) {
  const [token, setToken] = useState("");
  const save = (event: FormEvent) => {
    event.preventDefault();
    sessionStorage.setItem(PASTED_TOKEN, token);
    options.onToken(token);
    setToken("");
  };
  const leave = async () => {
    sessionStorage.removeItem(PASTED_TOKEN);
    await signOut(options);
    window.location.reload();
  };
  return (
    <section aria-labelledby="pq-account">
      <h2 id="pq-account">Account</h2>
      {session.error ? (
        <p role="alert" className="pq-banner pq-banner-danger">
          {session.error}
        </p>
      ) : null}
      {session.signedIn ? (
        <p>
          You are signed in.{" "}
          <button type="button" onClick={() => void leave()}>
            Sign out
          </button>
        </p>
      ) : session.available ? (
        <button type="button" className="pq-primary" onClick={() => void signIn(options)}>
          Sign in
        </button>
      ) : null}
      <details open={!session.available && !session.signedIn}>
        <summary>Use an access token instead</summary>
        <form onSubmit={save} className="pq-form" aria-label="Access token">
          <div className="pq-field">
            <label htmlFor="pq-token">Access token</label>
            <input id="pq-token" type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} />
          </div>
          <button type="submit">Use this token</button>
        </form>
      </details>
    </section>
  );
}
