// The generated TypeScript client against the live CRM service (started by
// apps/crm/bin/tests/typescript.rs, which passes its address in PREFIQ_BASE_URL).
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  ApiError,
  configure,
  createCompany,
  createDeal,
  deleteCompany,
  getCompany,
  listAllCompanies,
  listCompanies,
  pipelineReport,
  unwrap,
  updateCompany,
  winDeal,
} from "../services/client.js";

const baseUrl = process.env.PREFIQ_BASE_URL;
if (!baseUrl) throw new Error("set PREFIQ_BASE_URL to the CRM service");
const token = process.env.PREFIQ_TOKEN;
if (!token) throw new Error("set PREFIQ_TOKEN to an access token of the CRM service");
configure({ baseUrl, token });

// README:begin
async function example(): Promise<void> {
  const created = await createCompany({ name: "Initrode", industry: "software" });
  if (created.status !== 201) throw new Error(created.error.title);
  const company = created.data; // typed Company

  const page = unwrap(await listCompanies({ industry: "eq.software", sort: "-created_at", limit: 20 }));
  console.log(page.items.map((c) => c.name), page.next_cursor);

  const etag = created.response.headers.get("etag") ?? undefined;
  const updated = await updateCompany(company.id, { employee_count: 12 }, { ifMatch: etag });
  if (updated.status === 412) console.log("someone changed it first:", updated.error.detail);
  if (updated.status === 422) console.log(updated.error.errors.map((e) => e.pointer)); // narrowed
}
// README:end

test("a call without a token is refused with a typed 401", async () => {
  configure({ baseUrl, token: undefined });
  try {
    const refused = await listCompanies({});
    assert.equal(refused.status, 401);
    if (refused.status === 401) assert.match(refused.error.detail ?? "", /access token/);
  } finally {
    configure({ baseUrl, token });
  }
});

test("the README example runs", async () => {
  await example();
  const after = unwrap(await listCompanies({ name: "eq.Initrode" }));
  assert.equal(after.items[0]?.employee_count, 12);
});

test("create, list with filters, and an update with a stale ETag", async () => {
  const created = await createCompany({ name: "TypeScript Corp", industry: "software", tags: ["ts"] });
  assert.equal(created.status, 201);
  const company = unwrap(created);
  assert.equal(company.industry, "software");
  const etag = created.response.headers.get("etag");
  assert.equal(etag, '"1"');

  const page = unwrap(await listCompanies({ industry: "eq.software", name: "like.TypeScript*", sort: "-created_at", count: "exact" }));
  assert.deepEqual(page.items.map((c) => c.id), [company.id]);
  assert.equal(page.total, 1);

  const first = await updateCompany(company.id, { employee_count: 10, tags: null }, { ifMatch: etag ?? undefined });
  assert.equal(first.status, 200);
  assert.equal(first.data?.employee_count, 10);
  const stale = await updateCompany(company.id, { employee_count: 11 }, { ifMatch: etag ?? undefined });
  assert.equal(stale.status, 412);
  assert.equal(stale.error?.status, 412);

  const read = unwrap(await getCompany(company.id));
  assert.equal(read.version, 2);
  assert.deepEqual(read.tags, [], "null resets a field to its default");
  assert.equal((await deleteCompany(company.id, { ifMatch: '"2"' })).status, 204);
  assert.equal((await getCompany(company.id)).status, 404);
});

test("a 422 narrows to a validation problem with its pointers", async () => {
  const result = await createCompany({ name: "", website: "not a uri" });
  if (result.status !== 422) {
    assert.fail(`expected 422, got ${result.status}`);
  }
  // Narrowed by status: `errors` is required on a ValidationProblem.
  const pointers = result.error.errors.map((e) => e.pointer).sort();
  assert.deepEqual(pointers, ["/name", "/website"]);
  assert.throws(() => unwrap(result), ApiError);
});

test("a custom operation, and a report", async () => {
  const company = unwrap(await createCompany({ name: "TS Deals Ltd" }));
  const deal = unwrap(await createDeal({ name: "TS deal", company_id: company.id, amount: "99.00" }));
  const won = await winDeal({ id: deal.id }, { amount: "120.00" });
  assert.equal(won.status, 200);
  if (won.status === 200) {
    assert.equal(won.data.stage, "won");
    assert.equal(won.data.amount, "120.00");
  }
  const again = await winDeal({ id: deal.id }, {});
  assert.equal(again.status, 409);
  const report = unwrap(await pipelineReport({ currency: "EUR" }));
  assert.ok(report.stages.some((s) => s.stage === "won" && s.deals >= 1));
});

test("listAll follows cursors across pages", async () => {
  for (let i = 0; i < 5; i++) {
    unwrap(await createCompany({ name: `Paged ${i}`, tags: ["paged"] }));
  }
  const names: string[] = [];
  for await (const company of listAllCompanies({ tags: "cs.paged", sort: "name", limit: 2 })) {
    names.push(company.name);
  }
  assert.deepEqual(names, ["Paged 0", "Paged 1", "Paged 2", "Paged 3", "Paged 4"]);
});

test("an AbortSignal cancels a call", async () => {
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(listCompanies({}, { signal: controller.signal }), { name: "AbortError" });
});
