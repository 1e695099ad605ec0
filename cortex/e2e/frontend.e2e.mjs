// The apps' frontends served by Cortex at /apps/<app>/, in headless Chromium (Debian's package,
// driven by playwright-core): sign in to the CRM through Cortex's sign-in page (authorization
// code with PKCE), list and create companies under the user's own token, keep the session over a
// reload, go through every screen of the LMS after signing in there without a password (Cortex's
// session), and sign out. No token is ever written to localStorage; axe-core audits the screens. Started by cortex/bin/tests/browser.rs,
// which passes the server and the account in the environment. Screenshots go to $SCREENSHOTS.
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
const audit = async (page, screen) => {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const result = await globalThis.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  assert.deepEqual(violations, [], `accessibility of ${screen}`);
};
const stored = (page) =>
  page.evaluate(() => ({ local: Object.keys(localStorage), session: Object.keys(sessionStorage), url: window.location.href }));

let current;
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  current = page;
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) errors.push(message.text());
  });
  const tokenRequests = [];
  page.on("request", (r) => r.url().endsWith("/auth/token") && tokenRequests.push(r.postData() ?? ""));

  // Signed out, the page offers Cortex's sign-in, and the API refuses the list.
  await page.goto(`${base}/apps/crm/`);
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  await audit(page, "the signed-out home page");
  await page.goto(`${base}/apps/crm/#/companies`);
  await page.getByRole("alert").filter({ hasText: /401|sign|token/i }).first().waitFor();
  console.log("ok - signed out, the page offers sign-in and the API refuses");

  // Sign in: Cortex's page, then back with a code that the page exchanges (PKCE, S256).
  await page.goto(`${base}/apps/crm/`);
  await Promise.all([page.waitForURL(/\/login\?next=/), page.getByRole("button", { name: "Sign in" }).click()]);
  await shot(page, "cortex-sign-in");
  await page.fill("#email", env("ADMIN_EMAIL"));
  await page.fill("#password", env("ADMIN_PASSWORD"));
  await Promise.all([page.waitForURL(`${base}/apps/crm/`), page.click("button[type=submit]")]);
  await page.getByText("You are signed in.").waitFor();
  assert.equal(tokenRequests.length, 1, "one code exchange");
  const exchange = new URLSearchParams(tokenRequests[0]);
  assert.equal(exchange.get("grant_type"), "authorization_code");
  assert.equal(exchange.get("client_id"), "ui-crm");
  assert.match(exchange.get("code_verifier"), /^[A-Za-z0-9_-]{43}$/);
  let where = await stored(page);
  assert.equal(where.url, `${base}/apps/crm/`, "the code left the address bar");
  assert.deepEqual(where.local, [], "nothing in localStorage");
  assert.deepEqual(where.session, ["prefiq.refresh.ui-crm"], "only the refresh token, for this tab");
  await shot(page, "signed-in");
  await audit(page, "the signed-in home page");
  console.log("ok - signs in through Cortex with PKCE");

  // The bell in the app's header counts the user's notifications in Cortex, and lists them.
  const bell = page.getByRole("button", { name: "Notifications, 1 unread" });
  await bell.waitFor();
  await bell.click();
  await page.getByRole("link", { name: env("NOTICE") }).waitFor();
  await shot(page, "bell");
  await audit(page, "the bell's panel");
  await page.getByRole("button", { name: "Mark all read" }).click();
  await page.getByRole("button", { name: "Notifications", exact: true }).waitFor();
  console.log("ok - the bell shows the user's notifications from Cortex and marks them read");

  // The API answers under the user's token: the list, then a company made here.
  await page.getByRole("link", { name: "Companies" }).first().click();
  await page.getByRole("cell", { name: env("COMPANY") }).waitFor();
  const form = page.getByRole("form", { name: "New Company" });
  await form.getByLabel("Name").fill("Difference Engines");
  await form.getByRole("button", { name: "Create company" }).click();
  await page.getByRole("status").getByText("Company “Difference Engines” created").waitFor();
  await page.getByRole("cell", { name: "Difference Engines" }).waitFor();
  await shot(page, "company-created");
  await audit(page, "the companies page");
  console.log("ok - lists and creates companies under the user's token");

  // A reload keeps the session: the refresh token is exchanged (and rotated).
  const before = await page.evaluate(() => sessionStorage.getItem("prefiq.refresh.ui-crm"));
  await page.reload();
  await page.getByRole("cell", { name: "Difference Engines" }).waitFor();
  const after = await page.evaluate(() => sessionStorage.getItem("prefiq.refresh.ui-crm"));
  assert.notEqual(after, before, "the refresh token rotated");
  assert.equal(new URLSearchParams(tokenRequests.at(-1)).get("grant_type"), "refresh_token");
  console.log("ok - a reload keeps the session and rotates the refresh token");

  // The LMS: signed in through Cortex's session (no password asked), every entity's list and
  // form are served, fed by the API and accessible.
  await page.goto(`${base}/apps/lms/`);
  await Promise.all([page.waitForURL(`${base}/apps/lms/`), page.getByRole("button", { name: "Sign in" }).click()]);
  await page.getByText("You are signed in.").waitFor();
  const entities = await page.getByRole("navigation", { name: "Main" }).getByRole("link").evaluateAll((links) =>
    links.map((a) => ({ name: a.textContent, href: a.getAttribute("href") })).filter((l) => l.href !== "#/"),
  );
  assert.ok(entities.length >= 2, `the LMS lists its entities: ${JSON.stringify(entities)}`);
  for (const entity of entities) {
    await page.goto(`${base}/apps/lms/${entity.href}`);
    await page.getByRole("heading", { level: 1, name: entity.name }).waitFor();
    await page.getByText(`No ${entity.name.toLowerCase()}.`).waitFor();
    await page.getByRole("form", { name: /^New / }).waitFor();
    await audit(page, `the LMS's ${entity.name}`);
  }
  await shot(page, "lms");
  console.log(`ok - the LMS's screens (${entities.map((e) => e.name).join(", ")}) are served, signed in and accessible`);

  // Sign out: the session ends here and at Cortex. The refresh token held at that moment is
  // refused, and the next sign-in asks for a password again.
  await page.goto(`${base}/apps/crm/`);
  await page.getByText("You are signed in.").waitFor();
  const held = await page.evaluate(() => sessionStorage.getItem("prefiq.refresh.ui-crm"));
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  where = await stored(page);
  assert.deepEqual(where.session, ["prefiq.refresh.ui-lms"], "the CRM's refresh token is gone, the LMS's session stays");
  const reuse = await page.evaluate(async (token) => {
    const response = await fetch("/auth/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: token, client_id: "ui-crm" }),
    });
    return response.status;
  }, held);
  assert.equal(reuse, 400, "a revoked refresh token is refused");
  await shot(page, "signed-out");
  await Promise.all([page.waitForURL(/\/login\?next=/), page.getByRole("button", { name: "Sign in" }).click()]);
  assert.deepEqual(errors, [], "no page errors");
  console.log("ok - signs out: the refresh token is revoked and Cortex asks for the password again");
} catch (error) {
  if (current) await current.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => undefined);
  throw error;
} finally {
  await browser.close();
}
