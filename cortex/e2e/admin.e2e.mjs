// The admin UI in headless Chromium (Debian's package, driven by playwright-core): sign in,
// create a CRM contact after a validation error, edit it, find its audit entries, and check
// that a user of tenant A never sees tenant B's rows. Started by cortex/bin/tests/browser.rs,
// which passes the server and the accounts in the environment. Screenshots go to $SCREENSHOTS.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";

// playwright-core is installed with the other test tools under .ci/.
const { chromium } = createRequire(process.env.TOOLS ?? import.meta.url)("playwright-core");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
};
const base = env("CORTEX_URL");
const shots = env("SCREENSHOTS");
mkdirSync(shots, { recursive: true });

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

async function signIn(page, email, password) {
  await page.goto(`${base}/admin`);
  await page.waitForURL(/\/login\?next=/);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(`${base}/admin`), page.click("button[type=submit]")]);
}

try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (error) => errors.push(error.message));
  // Script errors and content-security-policy violations; a page answered with a 4xx on
  // purpose (the form with errors) is not one.
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      errors.push(message.text());
    }
  });

  // Sign in as the administrator of the default tenant.
  await signIn(page, env("ADMIN_EMAIL"), env("ADMIN_PASSWORD"));
  assert.equal(await page.textContent("h1"), "Dashboard");
  assert.match(await page.textContent("main"), /crm/);
  await shot(page, "dashboard");
  console.log("ok - signs in and sees the dashboard");

  // A contact, with a validation error first.
  await page.goto(`${base}/admin/crm/contacts/new`);
  await page.fill("#f-first_name", "Ada");
  await page.fill("#f-last_name", "Lovelace");
  await page.fill("#f-email", "not an e-mail");
  await page.selectOption("#f-company_id", { label: env("COMPANY") });
  await Promise.all([page.waitForLoadState("load"), page.click("button.primary")]);
  const error = await page.textContent("#error-email");
  assert.ok(error && error.length > 0, "the error is next to the e-mail field");
  assert.equal(await page.inputValue("#f-first_name"), "Ada", "what was typed is kept");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "f-email", "the script focuses the invalid field");
  await shot(page, "validation-error");
  console.log("ok - shows a validation error next to its field");

  await page.fill("#f-email", "ada@example.com");
  await Promise.all([page.waitForURL(/\/admin\/crm\/contacts\/[0-9a-f-]{36}$/), page.click("button.primary")]);
  const contactUrl = page.url();
  const contactId = contactUrl.split("/").pop();
  assert.match(await page.textContent("main"), /ada@example.com/);
  await shot(page, "contact-created");
  console.log("ok - creates a contact");

  await page.click("text=Edit");
  await page.waitForURL(/\/edit$/);
  await page.fill("#f-last_name", "King");
  await Promise.all([page.waitForURL(contactUrl), page.click("button.primary")]);
  assert.match(await page.textContent("main"), /King/);
  await shot(page, "contact-edited");
  console.log("ok - edits it");

  await page.goto(`${base}/admin/audit?entity=Contact&entity_id=${contactId}`);
  const log = await page.textContent("table.rows");
  assert.match(log, /update/);
  assert.match(log, /create/);
  assert.match(log, /King/);
  await shot(page, "audit-log");
  console.log("ok - sees the audit entries");

  // The platform's jobs page, at desktop and phone widths: queues, schedules, dead letters.
  await page.goto(`${base}/admin/jobs`);
  assert.equal(await page.textContent("h1"), "Jobs");
  assert.match(await page.textContent("main"), /prefiq-expire-idempotency-keys/);
  await shot(page, "jobs-desktop");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const wide = await page.evaluate(() =>
    [...document.querySelectorAll("body *")]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest(".scroll"))
      .slice(0, 5)
      .map((e) => `${e.tagName.toLowerCase()}${e.className ? "." + e.className : ""}`),
  );
  assert.ok(overflow <= 1, `the jobs page fits a phone (${overflow}px too wide: ${wide.join(", ")})`);
  await shot(page, "jobs-phone");
  await page.setViewportSize({ width: 1280, height: 800 });
  console.log("ok - shows the jobs and schedules at desktop and phone widths");

  // Tenant A's administrator never sees tenant B's rows.
  const tenantA = await browser.newContext();
  const a = await tenantA.newPage();
  await signIn(a, env("TENANT_A_EMAIL"), env("TENANT_A_PASSWORD"));
  await a.goto(`${base}/admin/crm/companies`);
  const companies = await a.textContent("main");
  assert.match(companies, new RegExp(env("TENANT_A_COMPANY")));
  assert.doesNotMatch(companies, new RegExp(env("TENANT_B_COMPANY")));
  await a.goto(`${base}/admin/crm/companies?field=name&op=like&value=*`);
  assert.doesNotMatch(await a.textContent("main"), new RegExp(env("TENANT_B_COMPANY")));
  const direct = await a.goto(`${base}/admin/crm/companies/${env("TENANT_B_COMPANY_ID")}`);
  assert.equal(direct.status(), 404);
  await a.goto(`${base}/admin/crm/companies`);
  await shot(a, "tenant-a-companies");
  console.log("ok - a user of tenant A never sees tenant B's rows");

  // The bell counts tenant A's administrator's notification; its page lists it and the choice
  // of channels, fits a phone, and marks everything read.
  assert.equal((await a.textContent("#unread")).trim(), "1");
  await Promise.all([a.waitForURL(`${base}/admin/notifications`), a.click("a.bell")]);
  assert.match(await a.textContent("#notices"), /was disabled/);
  assert.equal(await a.isChecked("input[name='webhook_disabled:in_app']"), true);
  await shot(a, "notifications-desktop");
  await a.setViewportSize({ width: 390, height: 844 });
  await a.reload();
  const tooWide = await a.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(tooWide <= 1, `the notifications page fits a phone (${tooWide}px too wide)`);
  await shot(a, "notifications-phone");
  await Promise.all([a.waitForURL(`${base}/admin/notifications`), a.click("text=Mark all read")]);
  assert.equal(await a.locator("#unread").count(), 0, "the bell is quiet");
  console.log("ok - the bell leads to the notifications, at desktop and phone widths");

  // The tenant's webhooks and their delivery attempts; an event is sent again from there.
  await a.setViewportSize({ width: 1280, height: 800 });
  await a.goto(`${base}/admin/webhooks`);
  assert.match(await a.textContent("#webhooks"), /receiver\.example\.com/);
  assert.match(await a.textContent("#deliveries"), /failed \(500\)/);
  await shot(a, "webhooks-desktop");
  await a.setViewportSize({ width: 390, height: 844 });
  await a.reload();
  const hooksTooWide = await a.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(hooksTooWide <= 1, `the webhooks page fits a phone (${hooksTooWide}px too wide)`);
  await shot(a, "webhooks-phone");
  a.once("dialog", (dialog) => void dialog.accept());
  await Promise.all([a.waitForURL(/\/admin\/webhooks\/.+\/redeliver$/), a.click("text=Send again")]);
  assert.match(await a.textContent("main"), /on its way again/);
  console.log("ok - lists the webhooks and their deliveries, and sends an event again");

  assert.deepEqual(errors, [], "no script error and no CSP violation");
  console.log("ok - no script errors");
} finally {
  await browser.close();
}
