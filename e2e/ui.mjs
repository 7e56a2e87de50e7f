// Trail's web UI in Debian's headless Chromium, driven by playwright-core. Started by the Rust
// test crates/trail/tests/ui.rs, which runs a seeded server and passes its address. Each test
// gets a fresh browser context; any script run by an XSS payload, any dialog, and any page
// error fails the run. Screenshots of each page go to $SCREENSHOTS.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import path from "node:path";
import { readFile } from "node:fs/promises";

const base = process.env.TRAIL_BASE;
const token = process.env.TRAIL_TOKEN;
const adminPassword = process.env.TRAIL_ADMIN_PASSWORD;
const shots = process.env.SCREENSHOTS;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

async function api(method, route, body) {
  const response = await fetch(base + route, {
    method, headers: { authorization: "Bearer " + token, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) assert.fail(`${method} ${route}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function context(viewport = { width: 1280, height: 900 }) {
  // Over HTTPS the certificate is the test's own (crates/trail/tests/ui.rs).
  const ctx = await browser.newContext({ viewport, timezoneId: "Europe/Amsterdam", ignoreHTTPSErrors: base.startsWith("https:") });
  const page = await ctx.newPage();
  page.on("dialog", async (dialog) => {
    if (dialog.type() === "confirm") return dialog.accept();
    throw new Error("an unexpected dialog opened: " + dialog.message());
  });
  page.on("pageerror", (error) => { throw error; });
  await ctx.addInitScript(() => { window.__xss = undefined; });
  return { ctx, page };
}

// Clicks what submits a form or follows a link, and waits for the page it loads. The click
// returns once the form is submitted, not once the next page has loaded: a read right after it
// could read the page before (and a layout measure see it without its stylesheet, as CI once
// did). Every submission loads exactly one page.
async function submit(page, target) {
  const loaded = page.waitForEvent("load");
  await (typeof target === "string" ? page.click(target) : target.click());
  await loaded;
}

async function login(page, user = "admin", password = adminPassword, next = "/") {
  await page.goto(base + next);
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="password"]', password);
  // The page asked for, or the login form again.
  await submit(page, 'button[type="submit"]');
}

async function shot(page, name, fullPage = true) {
  await page.screenshot({ path: path.join(shots, name + ".png"), fullPage });
}

// The payloads crates/trail/tests/ui.rs seeds into every field.
const PAYLOADS = ["<script>window.__xss=1</script>", "<img src=x onerror=\"window.__xss=1\">", "\"><svg onload=window.__xss=1>"];

// No payload ran, and, apart from the CSP (which would stop a script even if escaping broke), no
// element was made from one: the page has no inline script and no event-handler attribute.
async function noXss(page) {
  assert.equal(await page.evaluate(() => window.__xss), undefined, "an XSS payload ran on " + page.url());
  const injected = await page.evaluate(() =>
    [...document.querySelectorAll("script:not([src]), [onerror], [onload]")].map((e) => e.outerHTML));
  assert.deepEqual(injected, [], "markup made from a payload on " + page.url());
}

// The page's source as the server sent it holds no payload as markup.
async function escapedInSource(response) {
  const source = await response.text();
  for (const payload of PAYLOADS) assert.ok(!source.includes(payload), `${payload} unescaped in ${response.url()}`);
  return source;
}

const tests = {
  async "login failure and lockout have clear messages"() {
    const { ctx, page } = await context();
    await page.goto(base + "/");
    assert.match(page.url(), /\/login\?next=%2F$/, "no session: to the login page");
    await shot(page, "login");
    await login(page, "admin", "wrong password", "/");
    assert.match(await page.textContent("#login-error"), /username or password is wrong/);
    for (let i = 0; i < 5; i++) await login(page, "lockme", "not it");
    await login(page, "lockme", "lockme-pass-1234");
    assert.match(await page.textContent("#login-error"), /locked/, "the right password on a locked account");
    await shot(page, "login-locked");
    await ctx.close();
  },

  async "change logs combine filters in the URL, and the back button works"() {
    const { ctx, page } = await context();
    await login(page);
    await page.waitForSelector("#events tbody tr");
    // Over HTTPS the session cookie is Secure, and the server asks browsers to keep to HTTPS.
    const session = (await ctx.cookies()).find((cookie) => cookie.name === "trail_session");
    assert.equal(session.secure, base.startsWith("https:"), "the session cookie's Secure flag");
    if (base.startsWith("https:")) {
      const answer = await page.goto(page.url());
      assert.equal(answer.headers()["strict-transport-security"], "max-age=31536000");
    }
    await page.selectOption('select[name="who"]', "*");
    await submit(page, 'form.filters button[type="submit"]');
    const everyone = await page.locator("#events tbody tr").count();
    assert.equal(everyone, 100, "a pager of 100");
    await page.selectOption('select[name="who"]', "alice");
    await page.fill('input[name="message"]', "ntp server 192.0.2.1_");
    await page.fill('input[name="month"]', "2026-08");
    await submit(page, 'form.filters button[type="submit"]');
    const url = new URL(page.url());
    assert.equal(url.searchParams.get("who"), "alice");
    assert.equal(url.searchParams.get("month"), "2026-08");
    const users = await page.locator("#events tbody tr td:nth-child(2)").allTextContents();
    assert.ok(users.length > 0 && users.every((u) => u === "alice"), "only alice: " + users);
    const times = await page.locator("#events tbody tr td.time").allTextContents();
    assert.ok(times.every((t) => t.startsWith("2026-08") && /CES?T/.test(t)), "August, Amsterdam time: " + times);
    await shot(page, "change-logs-filtered");
    await page.goBack();
    assert.equal(new URL(page.url()).searchParams.get("who"), "*");
    assert.equal(await page.locator("#events tbody tr").count(), 100);
    const exported = await page.getAttribute('a[href*="format=csv"]', "href");
    assert.match(exported, /all_users=true/, "the export follows the filter");
    await ctx.close();
  },

  async "paging stays stable while new entries arrive"() {
    const { ctx, page } = await context();
    await login(page, "admin", adminPassword, "/?who=*");
    await page.waitForSelector("#older");
    await submit(page, "#older");
    const second = await page.locator("#events tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.id));
    const secondUrl = page.url();
    await api("POST", "/api/v1/events", Array.from({ length: 7 }, (_, n) => ({ user: "dave", kind: "DEVICE_EDITED", message: "late " + n })));
    await page.goto(secondUrl);
    const again = await page.locator("#events tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.id));
    assert.deepEqual(again, second, "the same page after new entries");
    assert.match(await page.textContent("#newer"), /7 newer entries/);
    await shot(page, "change-logs-newer", false);
    await submit(page, "#newer a");
    assert.equal(await page.locator("#events tbody tr td:nth-child(2)").first().textContent(), "dave");
    await ctx.close();
  },

  async "double-click or Enter opens the details, with the diff marked"() {
    const { ctx, page } = await context();
    await login(page, "admin", adminPassword, "/?who=bob");
    const row = page.locator("#events tbody tr").first();
    const id = await row.getAttribute("data-id");
    await row.dblclick();
    await page.waitForURL("**/events/" + id);
    assert.ok((await page.locator("pre.message ins.add").count()) > 0, "added lines are marked");
    assert.match(await page.locator("pre.message del.del").first().textContent(), /^-old line/, "and keep their -");
    await shot(page, "details");
    await page.goBack();
    await page.locator("#events tbody tr").nth(1).focus();
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/events\/\d+$/);
    await ctx.close();
  },

  async "an entry says which checkpoint covers it and offers its proof"() {
    const { ctx, page } = await context();
    const checkpoint = await api("POST", "/api/v1/checkpoints", {});
    await login(page, "admin", adminPassword, "/events/2");
    const integrity = await page.textContent("#integrity");
    // The first checkpoint that covers the entry: the one just made, or one signed on the way.
    const covering = Number(/Covered by the checkpoint of (\d+) entries/.exec(integrity)?.[1]);
    assert.ok(covering >= 2 && covering <= checkpoint.size, integrity);
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#integrity a[download]")]);
    const proof = JSON.parse(await readFile(await download.path(), "utf8"));
    assert.equal(proof.format, "trail-proof/v1");
    assert.equal(proof.event.id, 2);
    await shot(page, "integrity", false);
    await ctx.close();
  },

  async "a viewer sees a notice instead of others' details"() {
    const { ctx, page } = await context();
    await api("POST", "/api/v1/accounts", { username: "vera", password: "vera-pass-1234", roles: ["viewer"] });
    await login(page, "vera", "vera-pass-1234", "/?who=*");
    await page.locator("#events tbody tr").first().dblclick();
    await page.waitForURL(/\/events\/\d+$/);
    assert.match(await page.textContent("main"), /need the right details_all/);
    await page.goto(base + "/");
    assert.equal(await page.locator('a[href*="/api/v1/export"]').count(), 0, "no export without the right");
    await ctx.close();
  },

  async "a job opens in a window of its own, with leaves and a paged log"() {
    const { ctx, page } = await context();
    await login(page, "admin", adminPassword, "/jobs");
    await shot(page, "jobs");
    const [popup] = await Promise.all([ctx.waitForEvent("page"), page.click("#jobs tbody tr a")]);
    await popup.waitForLoadState();
    assert.match(popup.url(), /\/jobs\/1$/);
    assert.equal(await popup.locator("#leaves tbody tr").count(), 3);
    assert.equal((await popup.textContent("#log-lines")).split("\n").filter((l) => l.includes("step")).length, 100);
    await popup.click("#log-next");
    assert.match(await popup.textContent("#log-lines"), /step 101 /);
    await shot(popup, "job");
    await noXss(popup);
    await popup.click('a:has-text("Submission entry")');
    await popup.waitForURL(/\/events\/\d+$/);
    assert.ok((await popup.locator("#related tbody tr").count()) >= 3, "the submission leads to its leaves and results");
    assert.ok(await popup.locator('#related td:has-text("ARCHIVE_COMPLETED")').count() > 0, "the device result is linked");
    await ctx.close();
  },

  async "status updates live while an operation runs"() {
    const { ctx, page } = await context();
    await login(page, "admin", adminPassword, "/status");
    await page.waitForFunction(() => document.getElementById("live-state").textContent === "live");
    const { id } = await api("POST", "/api/v1/jobs", { name: "scan core", targets: ["core1", "core2"] });
    await page.waitForSelector(`tr[data-job="${id}"]`);
    await api("POST", `/api/v1/jobs/${id}/targets/core1/status`, { status: "succeeded", message: "" });
    await page.waitForFunction((job) => {
      const row = document.querySelector(`tr[data-job="${job}"]`);
      return row && row.querySelector('[data-field="succeeded"]').textContent === "1";
    }, id);
    assert.match(await page.textContent(`tr[data-job="${id}"] [data-field="last"]`), /core1: succeeded/);
    // A live update carrying markup shows it as text and makes no element of it.
    const payload = PAYLOADS[1];
    const { id: probe } = await api("POST", "/api/v1/jobs", { name: "scan " + payload, targets: [payload] });
    await page.waitForSelector(`tr[data-job="${probe}"]`);
    await api("POST", `/api/v1/jobs/${probe}/targets/${encodeURIComponent(payload)}/status`, { status: "failed", message: payload });
    await page.waitForFunction((job) =>
      document.querySelector(`tr[data-job="${job}"] [data-field="failed"]`)?.textContent === "1", probe);
    const row = await page.textContent(`tr[data-job="${probe}"]`);
    assert.ok(row.includes("scan " + payload) && row.includes(payload + ": failed"), "shown as text: " + row);
    await noXss(page);
    await shot(page, "status");
    await ctx.close();
  },

  async "administration: users, policy, tokens and forwarding"() {
    const { ctx, page } = await context();
    await login(page, "admin", adminPassword, "/admin/users");
    await page.fill('#add-user input[name="username"]', "nina");
    await page.fill('#add-user input[name="password"]', "nina-pass-1234");
    await page.selectOption('#add-user select[name="role"]', "operator");
    await submit(page, '#add-user button[type="submit"]');
    assert.match(await page.textContent("p.ok"), /Added nina/);
    await submit(page, 'tr[data-user="nina"] form[action$="/lock"] button');
    assert.match(await page.textContent('tr[data-user="nina"]'), /locked/);
    await submit(page, 'tr[data-user="nina"] form[action$="/unlock"] button');
    assert.match(await page.textContent("p.ok"), /Unlocked nina/);
    assert.match(await page.textContent('tr[data-user="nina"]'), /active/);
    assert.equal(await page.locator('tr[data-user="nina"] form[action$="/lock"]').count(), 1, "she can be locked again");
    await page.fill('tr[data-user="nina"] input[name="password"]', "nina-new-pass-5678");
    await submit(page, 'tr[data-user="nina"] form[action$="/password"] button');
    assert.match(await page.textContent("p.ok"), /Changed the password of nina/);
    // The new password is hers now, and the old one is not.
    const { ctx: hers, page: herPage } = await context();
    await login(herPage, "nina", "nina-pass-1234", "/");
    assert.match(await herPage.textContent("#login-error"), /username or password is wrong/);
    await login(herPage, "nina", "nina-new-pass-5678", "/");
    assert.doesNotMatch(herPage.url(), /\/login/, "logged in with the new password");
    await hers.close();
    await shot(page, "admin-users");
    await submit(page, 'tr[data-user="nina"] form[action$="/delete"] button');
    assert.match(await page.textContent("p.ok"), /Deleted nina/);
    await page.goto(base + "/admin/policy");
    assert.match(await page.textContent("#policy"), /5 failed logins/);
    await shot(page, "admin-policy");
    await page.goto(base + "/admin/tokens");
    await page.fill('input[name="name"]', "ci");
    await submit(page, 'form.stack button[type="submit"]');
    assert.match(await page.textContent("#new-token"), /^trl_/);
    const issued = (await page.textContent("#new-token")).trim();
    const tokens = (bearer) => fetch(base + "/api/v1/tokens", { headers: { authorization: "Bearer " + bearer } });
    assert.equal((await tokens(issued)).status, 200, "the new token works");
    // Revoked from its row (the confirmation is accepted), it stops working at once.
    await page.goto(base + "/admin/tokens");
    const row = page.locator("tbody tr", { has: page.locator("td", { hasText: /^ci$/ }) });
    assert.equal(await row.count(), 1, "the new token is listed: " + await page.textContent("body"));
    await submit(page, row.locator('form[action$="/revoke"] button'));
    assert.match(await page.textContent("p.ok"), /Revoked token/);
    assert.match(await row.textContent(), /revoked/);
    assert.equal((await tokens(issued)).status, 401, "a revoked token is refused");
    await page.goto(base + "/admin/destinations");
    assert.match(await page.textContent("#destinations"), /No destinations: add \[\[destinations\]\]/);
    assert.match(await page.textContent("body"), /Checkpoints and witnesses/);
    await shot(page, "admin-destinations");
    const { events } = await api("GET", "/api/v1/events?all_users=true&action=add&limit=5");
    assert.ok(events.some((e) => e.kind === "USER_ADDED" && e.name === "nina" && e.user === "admin"), "recorded");
    // Logging out ends the session: the next page asks for a login again.
    await submit(page, 'form[action="/logout"] button');
    await page.goto(base + "/admin/users");
    assert.match(page.url(), /\/login\?next=/, "after logout, pages need a login");
    await ctx.close();
  },

  async "XSS payloads in every field never run"() {
    const { ctx, page } = await context();
    await login(page, "admin", adminPassword, "/?who=*&action=%25script%25");
    const source = await escapedInSource(await page.goto(base + "/?who=*&message=window.__xss"));
    assert.ok(source.includes("&lt;script&gt;window.__xss=1&lt;/script&gt;"), "escaped in the source");
    assert.ok((await page.locator("#events tbody tr").count()) >= 3);
    assert.ok((await page.textContent("#events")).includes("<script>window.__xss=1</script>"), "shown as text");
    await noXss(page);
    const id = await page.locator("#events tbody tr").first().getAttribute("data-id");
    await escapedInSource(await page.goto(base + "/events/" + id));
    const entry = await page.textContent("body");
    assert.ok(PAYLOADS.some((payload) => entry.includes(payload)), "the entry shows its payload as text");
    await noXss(page);
    for (const route of ["/jobs", "/jobs/1", "/status", "/admin/users", "/admin/tokens", "/admin/destinations",
      "/?who=" + encodeURIComponent("<script>window.__xss=1</script>")]) {
      await escapedInSource(await page.goto(base + route));
      await noXss(page);
    }
    await shot(page, "xss");
    await ctx.close();
  },

  async "a state change without the CSRF token is refused"() {
    const { ctx, page } = await context();
    await login(page, "admin", adminPassword, "/admin/users");
    const refused = await page.evaluate(async () => {
      const response = await fetch("/admin/users", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "username=eve&role=admin&password=eve-pass-1234",
      });
      return response.status;
    });
    assert.equal(refused, 403);
    const forged = await page.evaluate(async () => (await fetch("/admin/users", {
      method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "csrf=forged&username=eve&role=admin&password=eve-pass-1234",
    })).status);
    assert.equal(forged, 403);
    const { events } = await api("GET", "/api/v1/events?all_users=true&name=eve");
    assert.equal(events.length, 0, "nothing happened");
    await ctx.close();
  },

  async "readable in a narrow window, and usable by keyboard"() {
    const { ctx, page } = await context({ width: 390, height: 844 });
    await login(page, "olga", "olga-pass-1234", "/?who=*");
    const overflow = await page.evaluate(() => {
      const wide = [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest(".table-wrap"));
      return { by: document.documentElement.scrollWidth - window.innerWidth, wide: wide.slice(0, 5).map((e) => e.tagName + "." + e.className + " " + Math.round(e.getBoundingClientRect().right)) };
    });
    assert.ok(overflow.by <= 1, "no sideways scrolling of the page: " + JSON.stringify(overflow));
    await shot(page, "change-logs-narrow", false);
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
    assert.equal(await page.locator('a[href="/admin/users"]').count(), 0, "an operator has no administration link");
    await page.goto(base + "/admin/users");
    assert.match(await page.textContent("main"), /needs the right administer/);
    await ctx.close();
  },
};

let failed = 0;
for (const [name, test] of Object.entries(tests)) {
  try {
    await test();
    console.log("ok   " + name);
  } catch (error) {
    failed++;
    console.log("FAIL " + name + "\n" + (error.stack || error));
  }
}
await browser.close();
console.log(`${Object.keys(tests).length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
