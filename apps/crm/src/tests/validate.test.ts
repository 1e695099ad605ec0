// The generated validators give the server's verdicts: the same pointers, messages and keywords,
// in the same order. Run by apps/crm/bin/tests/typescript.rs against the live CRM service
// (PREFIQ_BASE_URL), with the shared corpus of pinned formats (PREFIQ_FORMAT_CASES) and this
// app's corpus of bodies (PREFIQ_VALIDATE_CASES). Beside the hand-written cases, every member of
// every create body is broken in each way its schema allows, and each result is sent to both.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import {
  DEFINITIONS,
  checkFormat,
  validateActivityCreate,
  validateCompanyCreate,
  validateContactCreate,
  validateDealCreate,
  validateDealPatch,
  validateDealPatchBody,
} from "../services/validate.js";
import type { FieldError, Schema } from "../services/validate.js";

const baseUrl = process.env.PREFIQ_BASE_URL;
const token = process.env.PREFIQ_TOKEN;
const formatCases = process.env.PREFIQ_FORMAT_CASES;
const bodyCases = process.env.PREFIQ_VALIDATE_CASES;
if (!baseUrl || !token || !formatCases || !bodyCases) {
  throw new Error("set PREFIQ_BASE_URL, PREFIQ_TOKEN, PREFIQ_FORMAT_CASES and PREFIQ_VALIDATE_CASES");
}

const read = <T>(path: string): T => JSON.parse(readFileSync(path, "utf8")) as T;
type Body = Record<string, unknown>;

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, etag: response.headers.get("etag"), json: text ? (JSON.parse(text) as Body) : {} };
}

/**
 * The server's field errors, or `[]` when validation let the body through. A 409 is validation's
 * only for a patch whose merged result breaks the schema (`refused`); a create's 409 is a
 * uniqueness conflict, found after validation.
 */
function serverErrors(answer: { status: number; json: Body }): FieldError[] {
  const refused = answer.status === 409 && String(answer.json.type ?? "").endsWith("refused");
  if (answer.status !== 422 && !refused) return [];
  const errors = (answer.json.errors ?? []) as FieldError[];
  return errors.map(({ pointer, detail, keyword }) => ({ pointer, detail, keyword }));
}

test("the pinned formats give every verdict of the shared corpus", () => {
  const cases = read<Record<string, { valid: string[]; invalid: string[] }>>(formatCases);
  let count = 0;
  for (const [format, { valid, invalid }] of Object.entries(cases)) {
    for (const text of valid) {
      assert.equal(checkFormat(format, text), true, `${format}: ${JSON.stringify(text)} is valid`);
      count++;
    }
    for (const text of invalid) {
      assert.equal(checkFormat(format, text), false, `${format}: ${JSON.stringify(text)} is invalid`);
      count++;
    }
  }
  assert.ok(count > 80, `${count} format cases`);
});

const CREATES: Record<string, { path: string; validate: (body: unknown) => FieldError[] }> = {
  Company: { path: "/api/crm/companies", validate: validateCompanyCreate },
  Contact: { path: "/api/crm/contacts", validate: validateContactCreate },
  Deal: { path: "/api/crm/deals", validate: validateDealCreate },
  Activity: { path: "/api/crm/activities", validate: validateActivityCreate },
};

/** Values that break `schema` in each way it allows: a wrong type, each bound, format, enum. */
function breakers(schema: Schema): unknown[] {
  if (typeof schema !== "object") return [];
  const s = schema as Record<string, unknown>;
  if (typeof s.$ref === "string") return [...breakers(DEFINITIONS[s.$ref.slice("#/$defs/".length)] as Schema), 42, []];
  if (Array.isArray(s.allOf)) return (s.allOf as Schema[]).flatMap(breakers);
  if (Array.isArray(s.oneOf)) return [...(s.oneOf as Schema[]).flatMap(breakers), "neither", { kind: "fax" }];
  const types = (Array.isArray(s.type) ? s.type : [s.type]) as string[];
  const out: unknown[] = [types.includes("string") ? 12.5 : "text", types.includes("null") ? [] : null];
  if (typeof s.maxLength === "number") out.push("ü".repeat(s.maxLength + 1));
  if (typeof s.minLength === "number" && s.minLength > 0) out.push("");
  if (typeof s.pattern === "string") out.push("\u0000 nope", "1.234", "+0123");
  if (typeof s.format === "string") out.push(`not a ${s.format}`, "2024-02-30", "a@b..c", "-", "12.345");
  if (typeof s.minimum === "number") out.push(s.minimum - 1);
  if (typeof s.maximum === "number") out.push(s.maximum + 1, 1.5);
  if (Array.isArray(s.enum)) out.push("no-such-value");
  if (types.includes("array")) out.push(["dup", "dup"], Array.from({ length: 30 }, (_, i) => `t${i}`), [7]);
  if (types.includes("object")) {
    out.push({}, { unknown_member: 1 });
    const properties = (s.properties ?? {}) as Record<string, Schema>;
    for (const [name, inner] of Object.entries(properties)) for (const bad of breakers(inner).slice(0, 2)) out.push({ [name]: bad });
  }
  return out;
}

test("the browser and the server give the same verdict on every body of the corpus", async (t) => {
  const company = await call("POST", "/api/crm/companies", { name: "Verdicts Ltd" });
  assert.equal(company.status, 201);
  const contact = await call("POST", "/api/crm/contacts", {
    company_id: company.json.id, first_name: "Ver", last_name: "Dict", email: "ver@dict.example",
  });
  assert.equal(contact.status, 201);
  const deal = await call("POST", "/api/crm/deals", { name: "Verdict", company_id: company.json.id, amount: "10.00" });
  assert.equal(deal.status, 201);
  const ids: Record<string, unknown> = { $company: company.json.id, $contact: contact.json.id, $deal: deal.json.id };
  const fill = (body: Body): Body =>
    Object.fromEntries(Object.entries(body).map(([key, value]) => [key, typeof value === "string" && value in ids ? ids[value] : value]));

  const { bases, cases } = read<{ bases: Record<string, Body>; cases: { entity: string; body: Body }[] }>(bodyCases);
  const bodies: { entity: string; body: Body }[] = cases.map(({ entity, body }) => ({ entity, body: fill(body) }));
  for (const [entity, template] of Object.entries(bases)) {
    const base = fill(template);
    bodies.push({ entity, body: base });
    const definition = DEFINITIONS[`${entity}Create`] as Record<string, unknown>;
    const properties = definition.properties as Record<string, Schema>;
    for (const [name, schema] of Object.entries(properties)) {
      const { [name]: _, ...without } = base;
      bodies.push({ entity, body: without });
      for (const bad of breakers(schema)) bodies.push({ entity, body: { ...base, [name]: bad } });
    }
    bodies.push({ entity, body: { ...base, id: ids.$company, version: 3, surprise: true } });
  }

  let refused = 0;
  for (const { entity, body } of bodies) {
    const create = CREATES[entity];
    assert.ok(create, entity);
    const local = create.validate(body);
    const answer = await call("POST", create.path, body);
    const label = `${entity} ${JSON.stringify(body)} → ${answer.status}`;
    assert.ok(answer.status < 500, label);
    if (local.length > 0) refused += 1;
    assert.deepEqual(local, serverErrors(answer), label);
  }
  t.diagnostic(`${bodies.length} bodies, ${refused} refused by the browser and the server alike`);
  assert.ok(bodies.length > 200 && refused > 150, `${bodies.length} bodies, ${refused} refused`);
});

test("a patch's merged result gets the server's verdict", async () => {
  const company = await call("POST", "/api/crm/companies", { name: "Patched Ltd" });
  const created = await call("POST", "/api/crm/deals", { name: "Patched", company_id: company.json.id, amount: "5.00" });
  assert.equal(created.status, 201);
  const path = `/api/crm/deals/${String(created.json.id)}`;
  const replace = DEFINITIONS.DealReplace as Record<string, unknown>;
  const writable = Object.keys(replace.properties as Body);
  const patches: Body[] = [
    { stage: "lost" },
    { stage: "lost", lost_reason: "price" },
    { amount: "-1.00" },
    { probability: 150 },
    { name: null },
    { lost_reason: null, stage: "won" },
    { tags: ["a", "a"] },
    { expected_close_date: "2024-02-30" },
    { name: "Renamed" },
  ];
  for (const patch of patches) {
    const current = await call("GET", path);
    const merged: Body = Object.fromEntries(writable.filter((k) => k in current.json).map((k) => [k, current.json[k]]));
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) delete merged[key];
      else merged[key] = value;
    }
    const ownErrors = validateDealPatchBody(patch);
    const local = ownErrors.length > 0 ? ownErrors : validateDealPatch(merged);
    const answer = await call("PATCH", path, patch, {
      "content-type": "application/merge-patch+json",
      "if-match": current.etag ?? "*",
    });
    const label = `${JSON.stringify(patch)} → ${answer.status}`;
    assert.ok(answer.status < 500, label);
    assert.deepEqual(local, serverErrors(answer), label);
  }
});
