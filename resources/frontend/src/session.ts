// Signing in to Cortex from an app's frontend: the OAuth 2.0 authorization code grant with PKCE
// (S256), as the public client `ui-<app>`, which the OAuth 2.0 Security BCP (RFC 9700) asks of
// browser apps. The access token lives in memory only; the refresh token, which Cortex rotates at
// every use, in this tab's sessionStorage, so a reload keeps the session and closing the tab ends
// it. Nothing goes to localStorage.

export interface SessionOptions {
  /** The client id Cortex registered for this frontend, as in `ui-crm`. */
  clientId: string;
  /** Called with every new access token, and with `undefined` when the session ends. */
  onToken(token: string | undefined): void;
  /** Cortex's endpoints (default: those of this origin). */
  authorizeUrl?: string;
  tokenUrl?: string;
  logoutUrl?: string;
}

/** A sign-in that did not complete: refused (`refused`: the server said no), tampered with, or
 * unanswered. */
export class SignInError extends Error {
  constructor(
    message: string,
    readonly refused = true,
  ) {
    super(message);
  }
}

/** Whether this page is served by a Cortex that signs users in: its authorization server
 * metadata (RFC 8414) answers, as JSON naming an authorization endpoint. A dev server's
 * fallback page does not count. */
export async function signInAvailable(): Promise<boolean> {
  try {
    const response = await fetch("/.well-known/oauth-authorization-server", { headers: { accept: "application/json" } });
    if (!response.ok || !(response.headers.get("content-type") ?? "").includes("json")) return false;
    const metadata = (await response.json()) as Record<string, unknown>;
    return typeof metadata.authorization_endpoint === "string";
  } catch {
    return false;
  }
}

// Per client: the frontends Cortex serves share one origin, and so one sessionStorage.
const PENDING = (options: SessionOptions) => `prefiq.signin.${options.clientId}`;
const REFRESH = (options: SessionOptions) => `prefiq.refresh.${options.clientId}`;

interface Pending {
  state: string;
  verifier: string;
  redirect: string;
  hash: string;
}

let renewal: ReturnType<typeof setTimeout> | undefined;
/** The access token of the session, while there is one (memory only). */
let current: string | undefined;

/** The access token of the session signed in on this page, if any: for calls to Cortex that no
 * generated client makes (its notifications). */
export const sessionToken = (): string | undefined => current;

const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

/** `size` random bytes, base64url-encoded (32 bytes make a 43-character PKCE verifier). */
const random = (size: number) => base64url(crypto.getRandomValues(new Uint8Array(size)));

/** The S256 code challenge of `verifier`. */
export async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** Sends the browser to Cortex's sign-in; it comes back to this page with a code. */
export async function signIn(options: SessionOptions): Promise<void> {
  const pending: Pending = { state: random(16), verifier: random(32), redirect: window.location.pathname, hash: window.location.hash };
  sessionStorage.setItem(PENDING(options), JSON.stringify(pending));
  const url = new URL(options.authorizeUrl ?? "/auth/authorize", window.location.origin);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: options.clientId,
    redirect_uri: pending.redirect,
    code_challenge: await challengeOf(pending.verifier),
    code_challenge_method: "S256",
    state: pending.state,
  }).toString();
  window.location.assign(url.toString());
}

/**
 * Picks the session up when the page loads: completes a sign-in this page was sent back from, or
 * renews the tab's session. True when there is one.
 */
export async function resumeSession(options: SessionOptions): Promise<boolean> {
  const params = new URLSearchParams(window.location.search);
  const code = params.get("code");
  const error = params.get("error");
  if (code !== null || error !== null) {
    const saved = sessionStorage.getItem(PENDING(options));
    sessionStorage.removeItem(PENDING(options));
    const pending = saved ? (JSON.parse(saved) as Pending) : undefined;
    // The code must not stay in the address bar or the history.
    window.history.replaceState(null, "", `${window.location.pathname}${pending?.hash ?? ""}`);
    // Nothing from an answer this page did not ask for is believed, not even its error text.
    if (pending === undefined || params.get("state") !== pending.state) {
      throw new SignInError("This sign-in was not started here (its state does not match); sign in again.");
    }
    if (error !== null) throw new SignInError(`Cortex did not sign you in (${error}).`);
    await grant(options, {
      grant_type: "authorization_code",
      code: code ?? "",
      redirect_uri: pending.redirect,
      client_id: options.clientId,
      code_verifier: pending.verifier,
    });
    return true;
  }
  if (sessionStorage.getItem(REFRESH(options)) === null) return false;
  try {
    await renew(options);
    return true;
  } catch (error) {
    // A refused refresh token ends the session; an unanswered request leaves it for next time.
    if (!(error instanceof SignInError) || error.refused) end(options);
    return false;
  }
}

/** Ends the session here and at Cortex: its refresh tokens are revoked and Cortex's sign-in in
 * this browser ends, so the next "Sign in" asks for a password again. */
export async function signOut(options: SessionOptions): Promise<void> {
  const refresh = sessionStorage.getItem(REFRESH(options));
  end(options);
  if (refresh === null) return;
  await fetch(options.logoutUrl ?? "/auth/logout", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: refresh, client_id: options.clientId }),
  }).catch(() => undefined);
}

function end(options: SessionOptions) {
  sessionStorage.removeItem(REFRESH(options));
  clearTimeout(renewal);
  current = undefined;
  options.onToken(undefined);
}

const renew = (options: SessionOptions) =>
  grant(options, { grant_type: "refresh_token", refresh_token: sessionStorage.getItem(REFRESH(options)) ?? "", client_id: options.clientId });

/** Asks the token endpoint, keeps what it gives, and renews a minute before the token expires. */
async function grant(options: SessionOptions, form: Record<string, string>): Promise<void> {
  let response: Response;
  try {
    response = await fetch(options.tokenUrl ?? "/auth/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form),
    });
  } catch {
    throw new SignInError("Cortex cannot be reached.", false);
  }
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok || typeof body.access_token !== "string") {
    const reason = typeof body.error_description === "string" ? body.error_description : typeof body.error === "string" ? body.error : `HTTP ${response.status}`;
    // Only a 4xx is a refusal; a server error may pass.
    throw new SignInError(`Cortex refused the sign-in: ${reason}`, response.status >= 400 && response.status < 500);
  }
  if (typeof body.refresh_token === "string") sessionStorage.setItem(REFRESH(options), body.refresh_token);
  current = body.access_token;
  options.onToken(body.access_token);
  const seconds = typeof body.expires_in === "number" ? body.expires_in : 300;
  schedule(options, Math.max(seconds - 60, 10));
}

/** Renews the session in `seconds`; an unanswered renewal is tried again a little later, a refused
 * one ends the session. */
function schedule(options: SessionOptions, seconds: number) {
  clearTimeout(renewal);
  renewal = setTimeout(
    () =>
      void renew(options).catch((error: unknown) => {
        if (error instanceof SignInError && !error.refused) schedule(options, 30);
        else end(options);
      }),
    seconds * 1000,
  );
}
