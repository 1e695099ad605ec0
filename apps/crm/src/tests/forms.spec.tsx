// The CRM's forms and hooks in a simulated DOM against a fake API (the live-server versions are
// hooks.test.ts and browser.e2e.mjs): a rule of core/validation shows before anything is sent, a
// server 422 lands on the field it names, a 412 is explained with a way to reload, and writes
// keep the cache true from the schema's references.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, cleanup, render, renderHook, screen, waitFor, within } from "@testing-library/react";
import { userEvent } from "@testing-library/user-event";
import type { ReactNode } from "react";
import { afterEach, expect, test, vi } from "vitest";

import { EntityDetail, EntityForm, EntityTable } from "@prefiq/frontend";
import { contactSpec, dealSpec } from "../components/generated.js";
import { keys, useCompanies, useCreateContact } from "../hooks/generated.js";
import { configure } from "../services/client.js";
import type { Company, Contact, Deal } from "../../core/types/ts/index.js";

afterEach(cleanup);

const ACME: Company = {
  id: "0b5d6f3e-3f4c-4a5e-9a51-3c7e0e8f0a01",
  name: "Acme Robotics",
  industry: "software",
  tags: [],
  created_at: "2026-11-30T09:00:00Z",
  updated_at: "2026-11-30T09:00:00Z",
  version: 1,
};

type Answer = (request: Request, body: unknown) => Response | undefined;

/** A fake API: answers with `answer` where it says, lists ACME as the only company, and
 * records every request with its parsed body. */
function fakeApi(answer: Answer = () => undefined) {
  const sent: { method: string; path: string; query: URLSearchParams; headers: Headers; body: unknown }[] = [];
  configure({
    baseUrl: "http://api.test",
    token: "test-token",
    fetch: async (input, init) => {
      const request = new Request(input, init);
      const text = await request.clone().text();
      const body: unknown = text ? JSON.parse(text) : undefined;
      const url = new URL(request.url);
      sent.push({ method: request.method, path: url.pathname, query: url.searchParams, headers: request.headers, body });
      const answered = answer(request, body);
      if (answered) return answered;
      const path = new URL(request.url).pathname;
      if (request.method === "GET" && path === `/api/crm/companies/${ACME.id}`) return Response.json(ACME, { headers: { etag: '"1"' } });
      if (request.method === "GET" && path === "/api/crm/companies") return Response.json({ items: [ACME], next_cursor: null });
      if (request.method === "GET") return Response.json({ items: [], next_cursor: null });
      return problem(404, "Not found");
    },
  });
  return sent;
}

const problem = (status: number, title: string, extra: object = {}) =>
  Response.json({ type: "about:blank", title, status, ...extra }, { status, headers: { "content-type": "application/problem+json" } });

function show(ui: ReactNode, client = new QueryClient({ defaultOptions: { queries: { retry: false } } })) {
  return render(<QueryClientProvider client={client}>{ui}</QueryClientProvider>);
}

/** The text of everything that describes `control` (its hint and its error). */
const description = (control: HTMLElement) =>
  (control.getAttribute("aria-describedby") ?? "")
    .split(" ")
    .map((id) => document.getElementById(id)?.textContent ?? "")
    .join(" | ");

async function fillContact(form: HTMLElement) {
  await screen.findByRole("option", { name: ACME.name });
  await userEvent.selectOptions(within(form).getByLabelText(/^Company/), ACME.name);
  await userEvent.type(within(form).getByLabelText(/^First name/), "Ada");
  await userEvent.type(within(form).getByLabelText(/^Last name/), "Lovelace");
  await userEvent.type(within(form).getByLabelText(/^Email/), "ada@example.com");
}

test("a contact reached by phone needs a phone number: the rule shows before anything is sent", async () => {
  const sent = fakeApi((request, body) =>
    request.method === "POST" ? Response.json({ ...(body as object), id: "c-1", version: 1 }, { status: 201 }) : undefined,
  );
  show(<EntityForm spec={contactSpec} />);
  const form = screen.getByRole("form", { name: "New Contact" });
  await fillContact(form);
  await userEvent.selectOptions(within(form).getByLabelText(/^Preferred channel: kind/), "phone");
  await userEvent.selectOptions(within(form).getByLabelText(/^Best time/), "evening");

  const phone = within(form).getByLabelText(/^Phone/);
  expect(phone.getAttribute("aria-invalid")).toBe("true");
  expect(description(phone)).toContain("a contact reached by phone needs a phone number");
  await userEvent.click(within(form).getByRole("button", { name: "Create contact" }));
  expect(sent.filter((r) => r.method === "POST"), "nothing is sent while a rule fails").toHaveLength(0);

  await userEvent.type(phone, "+493012345678");
  expect(phone.getAttribute("aria-invalid")).toBeNull();
  await userEvent.click(within(form).getByRole("button", { name: "Create contact" }));
  await waitFor(() => expect(sent.filter((r) => r.method === "POST")).toHaveLength(1));
  expect(sent.find((r) => r.method === "POST")).toMatchObject({
    path: "/api/crm/contacts",
    body: {
      company_id: ACME.id,
      first_name: "Ada",
      last_name: "Lovelace",
      email: "ada@example.com",
      phone: "+493012345678",
      preferred_channel: { kind: "phone", best_time: "evening" },
    },
  });
});

test("a reference's picker finds rows by title on the server, and keeps the chosen one", async () => {
  // The search finds nothing, so the chosen company is no longer among the rows found.
  const sent = fakeApi((request) =>
    request.method === "GET" && new URL(request.url).searchParams.has("name") ? Response.json({ items: [], next_cursor: null }) : undefined,
  );
  show(<EntityForm spec={contactSpec} />);
  const form = screen.getByRole("form", { name: "New Contact" });
  await screen.findByRole("option", { name: ACME.name });
  await userEvent.selectOptions(within(form).getByLabelText(/^Company/), ACME.name);
  await userEvent.type(within(form).getByRole("searchbox", { name: "Find company" }), "Robo");
  await waitFor(() => {
    const lists = sent.filter((r) => r.path === "/api/crm/companies");
    expect(lists.at(-1)?.query.get("name")).toBe("ilike.*Robo*");
  });
  await waitFor(() => expect(screen.queryByRole("option", { name: ACME.name })).toBeNull());
  // Typing asks once, when it pauses, not at every key.
  expect(sent.filter((r) => r.query.has("name")).map((r) => r.query.get("name"))).toEqual(["ilike.*Robo*"]);
  const picker = within(form).getByLabelText(/^Company/) as HTMLSelectElement;
  expect(picker.value).toBe(ACME.id);
  expect(Array.from(picker.options, (o) => o.value)).toEqual(["", ACME.id]);
});

test("a server 422 is shown next to the field its pointer names", async () => {
  fakeApi((request) =>
    request.method === "POST"
      ? problem(422, "Unprocessable Content", { errors: [{ pointer: "/email", detail: "is already someone else's", keyword: "unique" }] })
      : undefined,
  );
  show(<EntityForm spec={contactSpec} />);
  const form = screen.getByRole("form", { name: "New Contact" });
  await fillContact(form);
  await userEvent.click(within(form).getByRole("button", { name: "Create contact" }));
  const email = within(form).getByLabelText(/^Email/);
  await waitFor(() => expect(description(email)).toContain("is already someone else's"));
  expect(email.getAttribute("aria-invalid")).toBe("true");
  // Editing the field clears the server's verdict on it.
  await userEvent.type(email, "x");
  expect(description(email)).not.toContain("is already someone else's");
});

test("saving a deal someone else changed is a 412, explained, with a way to reload", async () => {
  const deal: Deal = {
    id: "9f1c2b7a-6d3e-4b8a-a2c1-5e4f3d2c1b0a",
    name: "Robots for Acme",
    company_id: ACME.id,
    stage: "proposal",
    amount: "1200.00",
    currency: "EUR",
    probability: 40,
    tags: [],
    created_at: "2026-11-30T09:00:00Z",
    updated_at: "2026-11-30T09:00:00Z",
    version: 3,
  };
  const sent = fakeApi((request) => (request.method === "PATCH" ? problem(412, "Precondition Failed") : undefined));
  const reload = vi.fn();
  show(<EntityForm spec={dealSpec} row={deal} onReload={reload} />);
  const form = screen.getByRole("form", { name: "Edit Deal" });
  const name = within(form).getByLabelText(/^Name/);
  await userEvent.clear(name);
  await userEvent.type(name, "More robots for Acme");
  await userEvent.click(within(form).getByRole("button", { name: "Save" }));

  const banner = await within(form).findByText(/Someone else changed this deal since you opened it/);
  expect(banner.closest("[role=alert]")).not.toBeNull();
  const patch = sent.find((r) => r.method === "PATCH");
  expect(patch?.path).toBe(`/api/crm/deals/${deal.id}`);
  expect(patch?.headers.get("if-match"), "the edit is conditional on the version read").toBe('"3"');
  expect(patch?.body, "only the changed member is sent").toEqual({ name: "More robots for Acme" });
  await userEvent.click(within(form).getByRole("button", { name: "Reload" }));
  expect(reload).toHaveBeenCalledOnce();
});

test("a contact's company is shown by its name, linking to its page, and filtered by choice", async () => {
  const contact: Contact = {
    id: "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a",
    company_id: ACME.id,
    first_name: "Ada",
    last_name: "Lovelace",
    email: "ada@example.com",
    status: "active",
    marketing_opt_in: false,
    created_at: "2026-11-30T09:00:00Z",
    updated_at: "2026-11-30T09:00:00Z",
    version: 1,
  };
  const sent = fakeApi((request) =>
    request.method === "GET" && new URL(request.url).pathname === "/api/crm/contacts" ? Response.json({ items: [contact], next_cursor: null }) : undefined,
  );
  show(<EntityTable spec={contactSpec} />);
  const link = await screen.findByRole("link", { name: ACME.name });
  expect(link.getAttribute("href")).toBe(`#/companies/${ACME.id}`);
  expect(link.closest("td")).not.toBeNull();
  // Its filter is a choice of companies, not a box for an id.
  const filters = screen.getByRole("search", { name: "Filter contacts" });
  await userEvent.selectOptions(within(filters).getByRole("combobox", { name: "Company" }), ACME.name);
  await waitFor(() => expect(sent.filter((r) => r.path === "/api/crm/contacts").at(-1)?.query.get("company_id")).toBe(`eq.${ACME.id}`));
  cleanup();

  show(<EntityDetail spec={contactSpec} row={contact} />);
  expect((await screen.findByRole("link", { name: ACME.name })).getAttribute("href")).toBe(`#/companies/${ACME.id}`);
});

test("creating a contact makes its company's row and the contact lists stale, and caches the contact", async () => {
  const created: Contact = {
    id: "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
    company_id: ACME.id,
    first_name: "Ada",
    last_name: "Lovelace",
    email: "ada@example.com",
    status: "lead",
    marketing_opt_in: false,
    created_at: "2026-11-30T09:00:00Z",
    updated_at: "2026-11-30T09:00:00Z",
    version: 1,
  };
  fakeApi((request) => (request.method === "POST" ? Response.json(created, { status: 201 }) : undefined));
  const client = new QueryClient({ defaultOptions: { queries: { retry: false, staleTime: Infinity } } });
  client.setQueryData(keys.companies.row(ACME.id), ACME);
  client.setQueryData(keys.contacts.list({}), { items: [], next_cursor: null });
  client.setQueryData(keys.deals.list({}), { items: [], next_cursor: null });
  const wrapper = ({ children }: { children: ReactNode }) => <QueryClientProvider client={client}>{children}</QueryClientProvider>;
  const { result } = renderHook(() => useCreateContact(), { wrapper });
  await act(() => result.current.mutateAsync({ company_id: ACME.id, first_name: "Ada", last_name: "Lovelace", email: "ada@example.com" }));

  const stale = (key: readonly unknown[]) => client.getQueryState(key)?.isInvalidated;
  expect(stale(keys.companies.row(ACME.id)), "the company it belongs to").toBe(true);
  expect(stale(keys.contacts.list({})), "the contact lists").toBe(true);
  expect(stale(keys.deals.list({})), "deals do not refer to a new contact").toBe(false);
  expect(client.getQueryData(keys.contacts.row(created.id))).toEqual(created);
});

test("every hook takes TanStack Query's own options: a disabled list asks for nothing", async () => {
  const sent = fakeApi();
  const wrapper = ({ children }: { children: ReactNode }) => (
    <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>{children}</QueryClientProvider>
  );
  const { result, rerender } = renderHook(({ enabled }) => useCompanies({ industry: "eq.software" }, { enabled }), {
    wrapper,
    initialProps: { enabled: false },
  });
  expect(result.current.fetchStatus).toBe("idle");
  expect(sent).toHaveLength(0);
  rerender({ enabled: true });
  await waitFor(() => expect(result.current.data?.items).toEqual([ACME]));
  expect(sent.map((r) => r.path)).toEqual(["/api/crm/companies"]);
});
