// The React-free client entry: every generated client makes its own with `createClient`, so two
// apps' clients on one page keep their own address and token; results are shaped by the
// statuses the operation declares, and an undeclared status throws.
import { expect, test } from "vitest";

import { ApiError, createClient, unwrap } from "../src/client.js";
import type { Call } from "../src/client.js";

/** A fetch that records each request and answers `status` with `body`. */
function fake(status: number, body: unknown) {
  const seen: { url: string; init: RequestInit }[] = [];
  const fetch = (url: string | URL | Request, init?: RequestInit) => {
    seen.push({ url: String(url), init: init ?? {} });
    const text = body === undefined ? "" : JSON.stringify(body);
    return Promise.resolve(new Response(text, { status, headers: { "content-type": "application/json" } }));
  };
  return { seen, fetch: fetch as typeof globalThis.fetch };
}

const get: Call = { method: "GET", path: "/api/crm/companies", query: { limit: 2, sort: ["name", "-id"], q: undefined }, statuses: { 200: true, 404: false } };

test("two clients keep their own settings", async () => {
  const crm = fake(200, { items: [] });
  const lms = fake(200, { items: [] });
  const a = createClient({ fetch: crm.fetch });
  const b = createClient({ baseUrl: "https://lms.example", fetch: lms.fetch });
  a.configure({ token: "crm-token" });
  b.configure({ token: "lms-token" });
  await a.request(get);
  await b.request(get);
  expect(crm.seen[0]?.url).toBe("/api/crm/companies?limit=2&sort=name&sort=-id");
  expect(lms.seen[0]?.url).toBe("https://lms.example/api/crm/companies?limit=2&sort=name&sort=-id");
  expect((crm.seen[0]?.init.headers as Record<string, string>).authorization).toBe("Bearer crm-token");
  expect((lms.seen[0]?.init.headers as Record<string, string>).authorization).toBe("Bearer lms-token");
});

test("results are shaped by the declared statuses", async () => {
  const missing = fake(404, { title: "Not Found", detail: "no company 7" });
  const client = createClient({ fetch: missing.fetch });
  const result = await client.request<{ status: number; data?: unknown; error?: unknown; response: Response }>(get);
  expect(result.status).toBe(404);
  expect(result.error).toEqual({ title: "Not Found", detail: "no company 7" });
  expect(() => unwrap(result)).toThrow("HTTP 404: no company 7");
  const teapot = createClient({ fetch: fake(418, undefined).fetch });
  await expect(teapot.request(get)).rejects.toBeInstanceOf(ApiError);
});

test("a body is sent as JSON with its content type", async () => {
  const created = fake(201, { id: 1 });
  const client = createClient({ fetch: created.fetch });
  await client.request({ method: "POST", path: "/x", body: { name: "Acme" }, statuses: { 201: true } });
  const init = created.seen[0]?.init;
  expect(init?.body).toBe('{"name":"Acme"}');
  expect((init?.headers as Record<string, string>)["content-type"]).toBe("application/json");
});
