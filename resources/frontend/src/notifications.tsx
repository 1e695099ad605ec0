// The bell of Cortex's notifications in an app's header: the unread count of the person signed
// in, their latest notifications in a panel, all marked read from there, and a link to the rest
// and to what they are told, in Cortex's admin. It renders nothing where no Cortex answers (an
// app server alone) or nobody is signed in, and asks again every minute.
import { useCallback, useEffect, useId, useState } from "react";

import { currentToken } from "./account.js";

/** One notification, as `GET /api/cortex/me/notifications` lists it. */
export interface Notice {
  id: string;
  kind: string;
  title: string;
  body?: string | null;
  /** A path of Cortex's to see more. */
  link?: string | null;
  read: boolean;
  created_at: string;
}

/** The latest notifications and how many are unread. */
export interface Inbox {
  items: Notice[];
  unread: number;
}

export interface BellProps {
  /** Where Cortex is (default: this origin, where Cortex serves the app). */
  baseUrl?: string;
  /** The bearer token to ask with (default: the session's, else a pasted one). */
  token?: () => string | undefined;
  /** How often to ask again. */
  pollSeconds?: number;
  /** How many notifications the panel lists. */
  listed?: number;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

export function NotificationBell({ baseUrl = "", token = currentToken, pollSeconds = 60, listed = 5, fetch: doFetch = fetch }: BellProps) {
  const [inbox, setInbox] = useState<Inbox | null>(null);
  const [open, setOpen] = useState(false);
  const panel = useId();
  // `null` when Cortex does not answer this person: the bell stays away.
  const call = useCallback(
    async (path: string, init: RequestInit = {}): Promise<Inbox | null> => {
      const bearer = token();
      if (!bearer) return null;
      try {
        const headers: Record<string, string> = { accept: "application/json", authorization: `Bearer ${bearer}` };
        if (init.body !== undefined) headers["content-type"] = "application/json";
        const response = await doFetch(`${baseUrl}${path}`, { ...init, headers });
        return response.ok ? ((await response.json()) as Inbox) : null;
      } catch {
        return null;
      }
    },
    [baseUrl, token, doFetch],
  );
  const refresh = useCallback(async () => setInbox(await call(`/api/cortex/me/notifications?limit=${listed}`)), [call, listed]);
  useEffect(() => {
    void refresh();
    const timer = setInterval(() => void refresh(), pollSeconds * 1000);
    return () => clearInterval(timer);
  }, [refresh, pollSeconds]);
  if (!inbox) return null;
  const readAll = async () => {
    if (await call("/api/cortex/me/notifications/read", { method: "POST", body: "{}" })) await refresh();
  };
  const label = inbox.unread > 0 ? `Notifications, ${inbox.unread} unread` : "Notifications";
  return (
    <div className="pq-bell">
      <button type="button" className="pq-bell-button" aria-label={label} aria-expanded={open} aria-controls={panel} onClick={() => setOpen(!open)}>
        <svg aria-hidden="true" width="20" height="20" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round">
          <path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
          <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
        </svg>
        {inbox.unread > 0 ? <span className="pq-bell-count">{inbox.unread > 99 ? "99+" : inbox.unread}</span> : null}
      </button>
      {open ? (
        <section id={panel} className="pq-bell-panel" aria-label="Notifications">
          {inbox.items.length === 0 ? (
            <p className="pq-hint">Nothing yet.</p>
          ) : (
            <ul>
              {inbox.items.map((notice) => (
                <li key={notice.id} className={notice.read ? undefined : "pq-unread"}>
                  {notice.link ? <a href={notice.link}>{notice.title}</a> : <span>{notice.title}</span>}
                  <time dateTime={notice.created_at}>{new Date(notice.created_at).toLocaleString()}</time>
                </li>
              ))}
            </ul>
          )}
          <div className="pq-actions">
            {inbox.unread > 0 ? (
              <button type="button" onClick={() => void readAll()}>
                Mark all read
              </button>
            ) : null}
            <a href={`${baseUrl}/admin/notifications`}>All notifications and settings</a>
          </div>
        </section>
      ) : null}
    </div>
  );
}
