// NotificationBell against a fake Cortex: the unread count, the panel, marking all read with the
// session's token, and no bell at all where no Cortex answers or nobody is signed in.
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import { userEvent } from "@testing-library/user-event";
import { afterEach, expect, test } from "vitest";

import { NotificationBell } from "../src/index.js";
import type { Inbox } from "../src/index.js";

afterEach(cleanup);

/** A Cortex that holds `inbox` and marks it read on `POST .../read`; every request is kept. */
function cortex(inbox: Inbox, status = 200) {
  const seen: { url: string; method: string; authorization: string }[] = [];
  const fetch = (url: string | URL | Request, init: RequestInit = {}) => {
    const headers = init.headers as Record<string, string>;
    seen.push({ url: String(url), method: init.method ?? "GET", authorization: headers.authorization ?? "" });
    if (String(url).endsWith("/read")) {
      inbox = { items: inbox.items.map((n) => ({ ...n, read: true })), unread: 0 };
      return Promise.resolve(Response.json({ unread: 0 }));
    }
    return Promise.resolve(new Response(JSON.stringify(inbox), { status, headers: { "content-type": "application/json" } }));
  };
  return { seen, fetch: fetch as typeof globalThis.fetch };
}

const notice = (id: string, title: string, read: boolean) => ({ id, kind: "webhook_disabled", title, link: `/admin/cortex/webhooks/${id}`, read, created_at: "2026-12-08T05:00:00Z" });

test("the bell counts the unread, lists the latest and marks them all read", async () => {
  const fake = cortex({ items: [notice("1", "A webhook to https://a.example was disabled", false), notice("2", "Older", true)], unread: 1 });
  render(<NotificationBell token={() => "session-token"} fetch={fake.fetch} />);
  const bell = await screen.findByRole("button", { name: "Notifications, 1 unread" });
  expect(bell.textContent).toBe("1");
  expect(fake.seen[0]).toEqual({ url: "/api/cortex/me/notifications?limit=5", method: "GET", authorization: "Bearer session-token" });
  await userEvent.click(bell);
  const link = screen.getByRole("link", { name: "A webhook to https://a.example was disabled" });
  expect(link.getAttribute("href")).toBe("/admin/cortex/webhooks/1");
  expect(screen.getByRole("link", { name: "All notifications and settings" }).getAttribute("href")).toBe("/admin/notifications");
  await userEvent.click(screen.getByRole("button", { name: "Mark all read" }));
  await screen.findByRole("button", { name: "Notifications" });
  expect(fake.seen.some((r) => r.method === "POST" && r.url === "/api/cortex/me/notifications/read" && r.authorization === "Bearer session-token")).toBe(true);
  expect(screen.queryByRole("button", { name: "Mark all read" })).toBeNull();
});

test("no bell where no Cortex answers, and no request without a token", async () => {
  const missing = cortex({ items: [], unread: 0 }, 404);
  const { container } = render(<NotificationBell token={() => "t"} fetch={missing.fetch} />);
  await waitFor(() => expect(missing.seen.length).toBe(1));
  expect(container.innerHTML).toBe("");
  cleanup();
  const nobody = cortex({ items: [], unread: 0 });
  const quiet = render(<NotificationBell token={() => undefined} fetch={nobody.fetch} />);
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(nobody.seen).toEqual([]);
  expect(quiet.container.innerHTML).toBe("");
});
