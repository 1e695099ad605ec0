// The generated TanStack Query layer against the live CRM service (PREFIQ_BASE_URL): queries
// fill the cache, writes keep it true from the schema's references, a stale If-Match is a 412,
// and a generated hook renders in React.
import { test } from "node:test";
import assert from "node:assert/strict";

import { MutationObserver, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createElement } from "react";
import { renderToString } from "react-dom/server";

import { configure } from "../services/client.js";
import type { ApiError } from "../services/client.js";
import {
  companiesPagesQuery,
  companiesQuery,
  companyQuery,
  contactsQuery,
  createCompanyMutation,
  createContactMutation,
  dealQuery,
  deleteCompanyMutation,
  etagDeal,
  keys,
  createDealMutation,
  updateDealMutation,
  useCompany,
} from "../hooks/generated.js";

const baseUrl = process.env.PREFIQ_BASE_URL;
const token = process.env.PREFIQ_TOKEN;
if (!baseUrl || !token) throw new Error("set PREFIQ_BASE_URL and PREFIQ_TOKEN");
configure({ baseUrl, token });

const fresh = () => new QueryClient({ defaultOptions: { queries: { retry: false, staleTime: Infinity } } });
const isStale = (client: QueryClient, key: readonly unknown[]) => client.getQueryState(key)?.isInvalidated === true;

test("a write makes its lists and the rows it refers to stale, and caches the written row", async () => {
  const client = fresh();
  const company = await new MutationObserver(client, createCompanyMutation(client)).mutate({ name: "Hooks Ltd" });
  assert.deepEqual(client.getQueryData(keys.companies.row(company.id)), company, "the created row is cached");

  // A deal of the company, a page of its contacts and the company itself are cached and fresh.
  const deal = await new MutationObserver(client, createDealMutation(client)).mutate({ name: "Other", company_id: company.id, amount: "1.00" });
  assert.ok(isStale(client, keys.companies.row(company.id)), "a deal of the company makes the company stale");
  const unrelated = await client.fetchQuery(dealQuery(deal.id));
  const filter = { company_id: `eq.${company.id}` };
  assert.equal((await client.fetchQuery(contactsQuery(filter))).items.length, 0);
  await client.fetchQuery({ ...companyQuery(company.id), staleTime: 0 });
  assert.ok(!isStale(client, keys.contacts.list(filter)) && !isStale(client, keys.companies.row(company.id)));

  // Creating a contact of the company: the company's contact lists and the company go stale.
  await new MutationObserver(client, createContactMutation(client)).mutate({
    company_id: company.id, first_name: "Tan", last_name: "Stack", email: "tan@hooks.example",
  });
  assert.ok(isStale(client, keys.contacts.list(filter)), "the company's contact list is stale");
  assert.ok(isStale(client, keys.companies.row(company.id)), "the company the contact refers to is stale");
  assert.ok(!isStale(client, keys.deals.row(unrelated.id)), "a deal is untouched");
  assert.equal((await client.fetchQuery({ ...contactsQuery(filter), staleTime: 0 })).items.length, 1, "refetched");

  // Deleting the company: its contacts and deals (which cascade) go stale, its row leaves the cache.
  await client.fetchQuery(contactsQuery(filter));
  await new MutationObserver(client, deleteCompanyMutation(client)).mutate({ id: company.id });
  assert.equal(client.getQueryState(keys.companies.row(company.id)), undefined, "the deleted row left the cache");
  assert.ok(isStale(client, keys.contacts.list(filter)) && isStale(client, keys.deals.row(unrelated.id)));
});

test("an update with a stale If-Match is refused with 412, and a fresh one goes through", async () => {
  const client = fresh();
  const company = await new MutationObserver(client, createCompanyMutation(client)).mutate({ name: "Etag Ltd" });
  const deal = await new MutationObserver(client, createDealMutation(client)).mutate({ name: "Raced", company_id: company.id, amount: "5.00" });
  const read = await client.fetchQuery(dealQuery(deal.id));
  // Someone else changes it.
  await new MutationObserver(client, updateDealMutation(client)).mutate({ id: deal.id, patch: { amount: "6.00" } });
  const stale = new MutationObserver(client, updateDealMutation(client));
  await assert.rejects(stale.mutate({ id: deal.id, patch: { amount: "7.00" }, ifMatch: etagDeal(read) }), (error: ApiError) => {
    assert.equal(error.status, 412);
    return true;
  });
  const current = await client.fetchQuery({ ...dealQuery(deal.id), staleTime: 0 });
  const updated = await stale.mutate({ id: deal.id, patch: { amount: "7.00" }, ifMatch: etagDeal(current) });
  assert.equal(updated.amount, "7.00");
  assert.deepEqual(client.getQueryData(keys.deals.row(deal.id)), updated, "the cache holds the update");
});

test("pages follow the cursor", async () => {
  const client = fresh();
  for (const n of [1, 2, 3]) await new MutationObserver(client, createCompanyMutation(client)).mutate({ name: `Hook page ${n}`, industry: "retail" });
  const pages = await client.fetchInfiniteQuery({ ...companiesPagesQuery({ industry: "eq.retail", limit: 2 }), pages: 2 });
  assert.equal(pages.pages.length, 2);
  assert.equal(pages.pages[0]?.items.length, 2);
  assert.ok((pages.pages[1]?.items.length ?? 0) >= 1);
  const first = await client.fetchQuery(companiesQuery({ industry: "eq.retail", limit: 2 }));
  assert.deepEqual(first.items, pages.pages[0]?.items, "a page and the first of the pages agree");
});

test("a generated hook renders the cached row in React", async () => {
  const client = fresh();
  const company = await new MutationObserver(client, createCompanyMutation(client)).mutate({ name: "Rendered Ltd" });
  const Name = () => {
    const { data } = useCompany(company.id);
    return createElement("p", null, data?.name ?? "loading");
  };
  const html = renderToString(createElement(QueryClientProvider, { client }, createElement(Name)));
  assert.equal(html, "<p>Rendered Ltd</p>");
});
