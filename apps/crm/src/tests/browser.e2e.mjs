// The CRM's generated frontend in headless Chromium (Debian's package, driven by playwright-core),
// built by Vite and served by `vite preview` in front of the real CRM server on SQLite. Started by
// apps/crm/bin/tests/browser.rs with BASE (the frontend), TOKEN and SCREENSHOTS in the
// environment. It lists companies, filters and sorts them; creates a contact (its preferred
// channel a tagged union chosen by kind) after the form shows a rule's error before anything is
// sent; and edits a deal that another client changes meanwhile, so that the 412 is explained and
// a reload mends it. axe-core audits every screen it passes through against WCAG 2.1 A and AA.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";

const tools = createRequire(process.env.TOOLS ?? import.meta.url);
const { chromium } = tools("playwright-core");
const AXE = readFileSync(tools.resolve("axe-core/axe.min.js"), "utf8");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
};
const base = env("BASE");
const token = env("TOKEN");
const shots = env("SCREENSHOTS");
mkdirSync(shots, { recursive: true });

const api = async (method, path, body, headers = {}) => {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
};

// Rows through the same origin the page uses (the preview server proxies /api).
const company = async (name, industry) => {
  const created = await api("POST", "/api/crm/companies", { name, industry });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body;
};
const acme = await company("Acme Robotics", "software");
await company("Acme Tools", "manufacturing");
await company("Beta Foods", "retail");
const dealCreated = await api("POST", "/api/crm/deals", { name: "Raced deal", company_id: acme.id, amount: "100.00" });
assert.equal(dealCreated.status, 201);
const deal = dealCreated.body;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
});
const errors = [];
let step = 0;
const shot = async (page, name) => {
  step += 1;
  await page.screenshot({ path: `${shots}/${String(step).padStart(2, "0")}-${name}.png`, fullPage: true });
};

// Runs axe-core in the page (evaluated through the DevTools protocol, so the page's strict CSP
// still holds for the page itself) and fails on any WCAG 2.1 A or AA violation.
const audited = [];
const audit = async (page, screen) => {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const result = await globalThis.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  assert.deepEqual(violations, [], `accessibility of ${screen}`);
  audited.push(screen);
};

let current;
try {
  const context = await browser.newContext();
  await context.addInitScript((t) => sessionStorage.setItem("prefiq.token", t), token);
  const page = await context.newPage();
  current = page;
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && !/status of 4\d\d/.test(m.text()) && errors.push(`console: ${m.text()}`));

  // 0. The home page, in both themes.
  await page.goto(`${base}/#/`);
  await page.getByRole("heading", { name: "Crm" }).waitFor();
  await audit(page, "home");
  await page.emulateMedia({ colorScheme: "dark" });
  await audit(page, "home, dark theme");
  await page.emulateMedia({ colorScheme: "light" });

  // 1. Companies: filter by name, then sort by name descending.
  await page.goto(`${base}/#/companies`);
  const rows = page.locator("table.pq-table tbody tr");
  await page.getByRole("cell", { name: "Beta Foods" }).waitFor();
  await page.getByRole("searchbox", { name: "Name", exact: true }).fill("Acme");
  await page.waitForFunction(() => {
    const cells = [...document.querySelectorAll("table.pq-table tbody tr td:first-child")].map((td) => td.textContent);
    return cells.length === 2 && cells.every((c) => c.startsWith("Acme"));
  });
  const nameHeader = page.getByRole("columnheader", { name: "Name", exact: true });
  await nameHeader.getByRole("button").click();
  assert.equal(await nameHeader.getAttribute("aria-sort"), "ascending");
  await nameHeader.getByRole("button").click();
  assert.equal(await nameHeader.getAttribute("aria-sort"), "descending");
  await page.waitForFunction(() => document.querySelector("table.pq-table tbody tr td:first-child")?.textContent === "Acme Tools");
  assert.equal(await rows.count(), 2);
  await shot(page, "companies-filtered-sorted");
  await audit(page, "companies, filtered and sorted");
  await page.emulateMedia({ colorScheme: "dark" });
  await audit(page, "companies, dark theme");
  await page.emulateMedia({ colorScheme: "light" });

  // 2. A contact: the rule's error shows while typing, before anything is sent.
  await page.goto(`${base}/#/contacts`);
  const form = page.getByRole("form", { name: "New Contact" });
  // The company picker finds companies by name on the server.
  await form.getByLabel("Find company").fill("robot");
  const company = form.getByLabel(/^Company/);
  await page.waitForFunction(() => {
    const options = [...document.querySelectorAll("form[aria-label='New Contact'] select[name=company_id] option")];
    return options.length === 2 && options[1].textContent === "Acme Robotics";
  });
  await company.selectOption({ label: "Acme Robotics" });
  await form.getByLabel("First name").fill("Grace");
  await form.getByLabel("Last name").fill("Hopper");
  await form.getByLabel("Email").fill("grace@acme.example");
  let posts = 0;
  page.on("request", (r) => r.method() === "POST" && r.url().includes("/api/crm/contacts") && (posts += 1));
  // The preferred channel is a tagged union: choosing its kind shows that alternative's members.
  const channel = form.getByRole("group", { name: "Preferred channel" });
  await channel.getByLabel("Preferred channel: kind").selectOption("phone");
  await channel.getByLabel("Best time").selectOption("morning");
  const phone = form.getByLabel("Phone");
  const phoneError = form.locator(".pq-field", { has: page.getByLabel("Phone", { exact: true }) }).getByRole("alert");
  await phoneError.waitFor();
  assert.equal(await phoneError.textContent(), "a contact reached by phone needs a phone number");
  assert.equal(await phone.getAttribute("aria-invalid"), "true");
  const described = (await phone.getAttribute("aria-describedby")).split(" ");
  assert.ok(described.includes(await phoneError.getAttribute("id")), "the error describes the field");
  await form.getByRole("button", { name: "Create contact" }).click();
  assert.equal(posts, 0, "a form with an error sends nothing");
  await shot(page, "contact-rule-error");
  await audit(page, "a contact form showing errors");
  await page.emulateMedia({ colorScheme: "dark" });
  await audit(page, "a contact form showing errors, dark theme");
  await page.emulateMedia({ colorScheme: "light" });
  await phone.fill("+4930123456");
  await phoneError.waitFor({ state: "detached" });
  await form.getByRole("button", { name: "Create contact" }).click();
  await page.getByRole("status").getByText("Contact “Grace” created").waitFor();
  assert.equal(posts, 1);
  const listed = await api("GET", "/api/crm/contacts?email=eq.grace@acme.example");
  assert.equal(listed.body.items.length, 1, "the contact was stored");
  assert.deepEqual(listed.body.items[0].preferred_channel, { kind: "phone", best_time: "morning" });
  // The contacts table names the contact's company and links to it.
  const companyLink = page.locator("table.pq-table").getByRole("link", { name: "Acme Robotics" });
  await companyLink.first().waitFor();
  assert.equal(await companyLink.first().getAttribute("href"), `#/companies/${acme.id}`);
  await shot(page, "contact-created");

  // 3. A deal edited here while another client changes it: the 412 is explained, and a reload
  // shows their version.
  await page.goto(`${base}/#/deals/${deal.id}`);
  const edit = page.getByRole("form", { name: "Edit Deal" });
  await edit.getByLabel("Amount").fill("150.00");
  const theirs = await api("PATCH", `/api/crm/deals/${deal.id}`, { amount: "175.00" }, { "content-type": "application/merge-patch+json" });
  assert.equal(theirs.status, 200);
  await edit.getByRole("button", { name: "Save" }).click();
  const banner = edit.getByRole("alert").filter({ hasText: "Someone else changed this deal" });
  await banner.waitFor();
  await shot(page, "deal-412-explained");
  await audit(page, "a deal's page explaining a 412");
  await banner.getByRole("button", { name: "Reload" }).click();
  await page.waitForFunction(() => document.querySelector("form[aria-label='Edit Deal'] input[name=amount]")?.value === "175.00");
  await page.getByRole("form", { name: "Edit Deal" }).getByLabel("Amount").fill("180.00");
  await page.getByRole("form", { name: "Edit Deal" }).getByRole("button", { name: "Save" }).click();
  await page.getByRole("status").getByText("Saved").waitFor();
  const stored = await api("GET", `/api/crm/deals/${deal.id}`);
  assert.equal(stored.body.amount, "180.00");
  await shot(page, "deal-saved-after-reload");
  assert.deepEqual(errors, [], "no page errors");
  console.log(`ok: ${step} screenshots in ${shots}; no WCAG 2.1 A/AA violation on ${audited.length} screens (${audited.join("; ")})`);
} catch (error) {
  if (current) await current.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => undefined);
  throw error;
} finally {
  await browser.close();
}
