// The rules of core/validation/ give the same verdicts in the browser and on the server. Run by
// apps/crm/bin/tests/typescript.rs against the live CRM service (PREFIQ_BASE_URL), with the
// shared corpora in PREFIQ_RULE_CASES (bodies of this app) and PREFIQ_LOGIC_CASES (the portable
// subset of JSONLogic, which runtime/src/rules.rs holds datalogic-rs to).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { configure, createActivity, createCompany, createContact, createDeal, unwrap } from "../services/client.js";
import type { ActivityCreate, DealCreate } from "../../core/types/ts/index.js";
import { ActivityRules, DealRules, checkActivityRules, checkDealRules, evaluate } from "../services/rules.js";
import type { Logic, RuleError } from "../services/rules.js";

const baseUrl = process.env.PREFIQ_BASE_URL;
const token = process.env.PREFIQ_TOKEN;
const ruleCases = process.env.PREFIQ_RULE_CASES;
const logicCases = process.env.PREFIQ_LOGIC_CASES;
if (!baseUrl || !token || !ruleCases || !logicCases) {
  throw new Error("set PREFIQ_BASE_URL, PREFIQ_TOKEN, PREFIQ_RULE_CASES and PREFIQ_LOGIC_CASES");
}
configure({ baseUrl, token });

interface JsonLogic {
  apply(logic: unknown, data: unknown): unknown;
}
// json-logic-js, the reference engine (a test dependency in .ci/, so its name is not resolved by tsc).
const jsonLogic = (await import(String("json-logic-js"))).default as JsonLogic;

const read = <T>(path: string): T => JSON.parse(readFileSync(path, "utf8")) as T;

test("the evaluator and json-logic-js give every result of the shared corpus", () => {
  const { cases } = read<{ cases: { logic: Logic; data: unknown; result: boolean }[] }>(logicCases);
  assert.ok(cases.length > 30);
  for (const { logic, data, result } of cases) {
    const label = JSON.stringify({ logic, data });
    assert.equal(evaluate(logic, data), result, `generated evaluator: ${label}`);
    assert.equal(jsonLogic.apply(logic, data), result, `json-logic-js: ${label}`);
  }
});

test("the browser and the server blame the same members with the same messages", async () => {
  const company = unwrap(await createCompany({ name: "Rules Ltd" }));
  const contact = unwrap(
    await createContact({ company_id: company.id, first_name: "Ru", last_name: "Les", email: "ru@rules.example" }),
  );
  const deal = unwrap(await createDeal({ name: "Ruled", company_id: company.id, amount: "1.00" }));
  const ids: Record<string, string> = { $company: company.id, $contact: contact.id, $deal: deal.id };
  const { cases } = read<{ cases: { check: "Activity" | "Deal"; body: Record<string, unknown>; blamed: string[] }[] }>(ruleCases);
  assert.ok(cases.some((c) => c.blamed.length > 0) && cases.some((c) => c.blamed.length === 0));
  for (const { check, body: template, blamed } of cases) {
    const body = Object.fromEntries(
      Object.entries(template).map(([key, value]) => [key, typeof value === "string" ? (ids[value] ?? value) : value]),
    );
    const rules = check === "Activity" ? ActivityRules : DealRules;
    const local: RuleError[] = check === "Activity" ? checkActivityRules(body) : checkDealRules(body);
    assert.deepEqual(local.map((e) => e.pointer), blamed, `the browser, ${JSON.stringify(body)}`);
    for (const rule of rules) {
      assert.equal(jsonLogic.apply(rule.condition, body), evaluate(rule.condition, body), `json-logic-js on ${rule.id}`);
    }
    const answer =
      check === "Activity" ? await createActivity(body as unknown as ActivityCreate) : await createDeal(body as unknown as DealCreate);
    if (blamed.length === 0) {
      assert.equal(answer.status, 201, `the server accepts ${JSON.stringify(body)}: ${JSON.stringify(answer.error)}`);
    } else {
      assert.equal(answer.status, 422, `the server refuses ${JSON.stringify(body)}`);
      const problem = answer.error as { errors: RuleError[] };
      assert.deepEqual(problem.errors, local, "the same pointers, messages and keyword");
    }
  }
});
