// Issue 5: the admin web UI driven by a real headless Chromium (Debian's package, through
// playwright-core), against a real server, with curl and openssl as the EST client.
// Screenshots of every page land in test-artifacts/ui/ (not committed).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate, createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type BrowserContext, type Page, chromium } from "playwright-core";
import { ROOT, type InitResult, type Server, certsFromCertsOnly, cleanup, curl, estca, initData, makeCsr, run, runBinary, startServer, tempDir } from "./helpers/harness.ts";

const ARTIFACTS = join(ROOT, "test-artifacts", "ui");
const CAM_PASSWORD = "camera-enroll-password-42";
const WRONG_ADMIN_PASSWORD = "definitely-not-the-admin-pw";
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/**
 * Chromium trusts exactly the listener's key (by its SPKI hash) instead of ignoring every
 * certificate error: the test still fails if the server presents any other certificate.
 */
function listenerSpkiHash(dataDir: string): string {
  const cert = new X509Certificate(readFileSync(join(dataDir, "tls", "server.pem")));
  return createHash("sha256").update(cert.publicKey.export({ type: "spki", format: "der" })).digest("base64");
}

async function serialOf(certsOnlyB64: string): Promise<{ serial: string; pem: string }> {
  const pem = await certsFromCertsOnly(certsOnlyB64);
  const dir = tempDir("estca-serial-");
  writeFileSync(join(dir, "c.pem"), pem);
  const r = await run("openssl", ["x509", "-in", join(dir, "c.pem"), "-noout", "-serial"]);
  cleanup(dir);
  return { serial: r.stdout.trim().split("=")[1].toLowerCase().replace(/^0+/, ""), pem };
}

/** The page must not be wider than the window: nothing to scroll sideways on a phone. */
async function assertNoHorizontalScroll(page: Page, what: string): Promise<void> {
  const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  assert.ok(scroll <= inner + 1, `${what}: the page is ${scroll}px wide in a ${inner}px window`);
}

describe("admin web UI in Chromium", () => {
  let inst: InitResult;
  let srv: Server;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const work = tempDir();
  let laptopSerial = "";
  let spki = "";

  const shot = (p: Page, name: string) => p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  const enroll = (user: string, body: string, label = "") =>
    curl(`${srv.estBase}${label ? label + "/" : ""}simpleenroll`, { method: "POST", cacert: srv.caPem, user, contentType: "application/pkcs10", body });

  async function signIn(p: Page): Promise<void> {
    await p.goto(`${srv.origin}/ui/`);
    await p.locator("#login-form").waitFor();
    await p.fill("#login-user", "admin");
    await p.fill("#login-password", inst.adminPassword);
    await p.click("#login-submit");
    await p.locator(".stats").waitFor();
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    inst = await initData();
    const u = await estca(["user", "add", "cam", "--label", "manual", "--password-stdin", "--data", inst.dir], { input: CAM_PASSWORD });
    assert.equal(u.code, 0, u.stderr);
    srv = await startServer(inst.dir);
    spki = listenerSpkiHash(inst.dir);
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${spki}`] });
    ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    ctx.setDefaultTimeout(20_000);
    page = await ctx.newPage();
    page.on("pageerror", (e) => pageErrors.push(e.message));
    // The CSP allows only this origin's script and style: anything it blocks is a UI bug.
    page.on("console", (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) pageErrors.push(m.text());
    });
  });
  after(async () => {
    await browser?.close();
    await srv?.stop();
    cleanup(work);
    if (inst) cleanup(join(inst.dir, ".."));
  });

  test("a wrong admin password is refused; the right one signs in", async () => {
    await page.goto(`${srv.origin}/ui/`);
    await page.locator("#login-form").waitFor();
    await shot(page, "01-login");
    await page.fill("#login-user", "admin");
    await page.fill("#login-password", WRONG_ADMIN_PASSWORD);
    await page.click("#login-submit");
    await page.locator("#login-error").waitFor();
    assert.equal(await page.textContent("#login-error"), "Wrong user name or password.");
    assert.equal(await page.isVisible("#topbar"), false);
    await shot(page, "02-login-refused");
    await page.fill("#login-password", inst.adminPassword);
    await page.click("#login-submit");
    await page.locator(".stats").waitFor();
    assert.equal(await page.textContent("#who-name"), "admin");
    // The session cookie is not readable by scripts.
    assert.equal(await page.evaluate(() => document.cookie), "");
    const cookies = await ctx.cookies();
    const c = cookies.find((x) => x.name === "__Host-estca_session");
    assert.ok(c && c.httpOnly && c.secure && c.sameSite === "Strict", JSON.stringify(cookies));
  });

  test("a certificate enrolled over EST by curl shows on the dashboard and in the certificate list", async () => {
    const csr = await makeCsr(work, "ui-laptop-01", { sans: ["DNS:ui-laptop-01.example.test"] });
    const r = await enroll(`est:${inst.estPassword}`, csr.csrB64);
    assert.equal(r.status, 200, r.text);
    laptopSerial = (await serialOf(r.text)).serial;
    const csr2 = await makeCsr(work, "ui-alpha-02");
    assert.equal((await enroll(`est:${inst.estPassword}`, csr2.csrB64)).status, 200);

    await page.goto(`${srv.origin}/ui/#/dashboard`);
    await page.reload();
    await page.locator(".stats").waitFor();
    assert.equal(await page.textContent('[data-stat="issued"] .stat-value'), "2");
    assert.equal(await page.textContent('[data-stat="valid"] .stat-value'), "2");
    assert.equal(await page.textContent('[data-stat="revoked"] .stat-value'), "0");
    assert.equal(await page.textContent('[data-stat="pending-approval"] .stat-value'), "0");
    const today = new Date().toISOString().slice(0, 10);
    assert.equal(await page.locator("svg.chart rect.bar title", { hasText: `${today}: 2 certificates` }).count(), 1);
    const dash = await page.textContent("#view");
    assert.match(dash!, /CN=estca Root CA/);
    assert.match(dash!, /CKM_ECDSA/);
    assert.match(dash!, /softhsm/i);
    assert.match(dash!, /days left/);
    assert.match(dash!, /CRL http:\/\/\S+\/crl\/1\.crl · OCSP http:\/\/\S+\/ocsp/);
    assert.match((await page.textContent("#cmd-curl"))!, new RegExp(`curl .*${srv.origin.replace(/[.:/]/g, "\\$&")}/\\.well-known/est/simpleenroll`, "s"));
    assert.match((await page.textContent("#cmd-strongswan"))!, /pki --est --url https:\/\/localhost:\d+/);
    await assertNoHorizontalScroll(page, "dashboard");
    await shot(page, "03-dashboard");

    await page.click('#nav a[data-page="certificates"]');
    const row = page.locator(`#cert-table tr[data-serial="${laptopSerial}"]`);
    await row.waitFor();
    assert.match((await row.textContent())!, /CN=ui-laptop-01.*dns:ui-laptop-01\.example\.test.*valid/s);
    await page.fill("#cert-search", "no-such-device-zz");
    await page.locator("#cert-table td.empty").waitFor();
    // Two characters search serial numbers only (fast at a million rows), and the page says so.
    await page.fill("#cert-search", "ui");
    assert.match((await page.locator("#cert-search-note").textContent())!, /fewer than 3 characters match the start of serial numbers only/);
    await page.locator("#cert-table td.empty").waitFor();
    await page.fill("#cert-search", laptopSerial.slice(0, 2));
    await row.waitFor();
    await page.fill("#cert-search", "laptop-01.example");
    await row.waitFor();
    await page.fill("#cert-search", "");
    await page.waitForFunction(() => document.querySelectorAll("#cert-table tr[data-serial]").length === 2);
    // Sort by subject, by its column header and by the sort menu.
    const subjects = () => page.locator("#cert-table tbody tr td:first-child").allTextContents();
    await page.click('#cert-table th button:has-text("Subject")');
    // aria-sort is set only by the re-rendered table, so the old rows cannot be read by mistake.
    await page.locator('#cert-table th button[aria-sort="ascending"]:has-text("Subject")').waitFor();
    assert.deepEqual(await subjects(), ["CN=ui-alpha-02", "CN=ui-laptop-01"]);
    await page.selectOption("#cert-sort", "subject:desc");
    await page.locator('#cert-table th button[aria-sort="descending"]:has-text("Subject")').waitFor();
    assert.deepEqual(await subjects(), ["CN=ui-laptop-01", "CN=ui-alpha-02"]);
    await shot(page, "04-certificates");
  });

  test("a request to the manual profile is approved in the UI and the client then receives its certificate", async () => {
    const csr = await makeCsr(work, "ui-camera-7", { sans: ["DNS:camera-7.example.test"] });
    const held = await enroll(`cam:${CAM_PASSWORD}`, csr.csrB64, "manual");
    assert.equal(held.status, 202, held.text);
    assert.ok(Number(held.headers["retry-after"]) > 0);

    await page.click('#nav a[data-page="approvals"]');
    const card = page.locator("article.approval", { hasText: "CN=ui-camera-7" });
    await card.waitFor();
    assert.equal(await page.textContent("#pending-count"), "1");
    assert.match((await card.textContent())!, /dns:camera-7\.example\.test.*manual.*user:cam/s);
    await shot(page, "05-approvals");
    await card.locator("input").fill("asset tag checked");
    await card.locator('button[data-action="approve"]').click();
    await page.locator(".empty-card", { hasText: "No requests are waiting" }).waitFor();
    assert.match((await page.textContent("#view"))!, /approved.*admin:admin.*asset tag checked/s);

    const got = await enroll(`cam:${CAM_PASSWORD}`, csr.csrB64, "manual");
    assert.equal(got.status, 200, got.text);
    const { pem } = await serialOf(got.text);
    const f = join(work, "camera.pem");
    writeFileSync(f, pem);
    const v = await run("openssl", ["verify", "-CAfile", srv.caPem, f]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match((await run("openssl", ["x509", "-in", f, "-noout", "-subject"])).stdout, /CN\s*=\s*ui-camera-7/);
  });

  test("a certificate revoked in the UI appears in the CRL", async () => {
    await page.goto(`${srv.origin}/ui/#/certificates/${laptopSerial}`);
    await page.locator("#revoke-start").waitFor();
    assert.equal(await page.textContent("#cert-status"), "valid");
    assert.equal(await page.getAttribute("#download-pem", "href"), `/api/certificates/${laptopSerial}/pem`);
    await shot(page, "06-certificate");
    // The PEM download is the certificate itself.
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-pem")]);
    const dl = join(work, "download.pem");
    await download.saveAs(dl);
    const serial = (await run("openssl", ["x509", "-in", dl, "-noout", "-serial"])).stdout.trim().split("=")[1];
    assert.equal(serial.toLowerCase().replace(/^0+/, ""), laptopSerial);

    await page.click("#revoke-start");
    await page.selectOption("#revoke-reason", "keyCompromise");
    await page.click("#revoke-confirm");
    await page.locator("#cert-status", { hasText: "revoked" }).waitFor();
    assert.match((await page.textContent(".revoke"))!, /keyCompromise/);
    await shot(page, "07-certificate-revoked");

    // The lifecycle edge republishes the CRL on revocation; allow it a moment.
    let text = "";
    for (let i = 0; i < 30; i++) {
      const crl = await runBinary("curl", ["-sS", "--fail", `${srv.httpBase}/crl/1.crl`]);
      assert.equal(crl.code, 0, crl.stderr);
      const der = join(work, "1.crl");
      writeFileSync(der, crl.stdout);
      const t = await run("openssl", ["crl", "-inform", "DER", "-in", der, "-noout", "-text", "-CAfile", srv.caPem]);
      assert.equal(t.code, 0, t.stderr);
      assert.match(t.stdout + t.stderr, /verify OK/);
      text = t.stdout;
      if (text.toLowerCase().includes(laptopSerial)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.match(text, new RegExp(`Serial Number: 0*${laptopSerial}`, "i"), text);
    assert.match(text, /Key Compromise/);
  });

  test("a failed EST request shows its exact reason in the live request inspector", async () => {
    await page.click('#nav a[data-page="requests"]');
    await page.locator("#req-table").waitFor();
    // Made while the page is open: the inspector must pick them up without a reload.
    const badBase64 = await enroll(`est:${inst.estPassword}`, "this is not base64 !!");
    assert.equal(badBase64.status, 400);
    const wrongPw = await enroll("ui-nobody:some-guess-1234", "AAAA");
    assert.equal(wrongPw.status, 401);
    for (const r of [badBase64, wrongPw]) {
      const reason = r.text.trim();
      assert.ok(reason.length > 5, `the client was told a reason: ${reason}`);
      await page.locator("#req-body tr.failed .reason-text", { hasText: reason }).first().waitFor();
    }
    const row = page.locator("#req-body tr.failed", { hasText: "ui-nobody" }).first();
    assert.match((await row.textContent())!, /simpleenroll.*user:ui-nobody.*TLSv1\.[23].*401/s);
    // A click opens everything the log knows about the request, its id included.
    await row.click();
    const details = page.locator("#req-body tr.details");
    await details.waitFor();
    assert.match((await details.textContent())!, /Request id[0-9a-f-]{36}.*POST \/\.well-known\/est\/simpleenroll.*401 · unknown user "ui-nobody"/s);
    await shot(page, "08-requests-detail");
    await row.click();
    await details.waitFor({ state: "detached" });
    await page.fill("#req-client", "ui-nobody");
    await page.waitForFunction(() => Array.from(document.querySelectorAll("#req-body tr")).every((tr) => tr.textContent!.includes("ui-nobody")));
    assert.equal(await page.locator("#req-body tr").count(), 1);
    await page.fill("#req-client", "");
    await page.waitForFunction(() => document.querySelectorAll("#req-body tr").length > 3);
    await assertNoHorizontalScroll(page, "requests");
    await shot(page, "08-requests");
  });

  test("an EST user added in the UI can enroll, and can be removed", async () => {
    await page.click('#nav a[data-page="users"]');
    await page.locator("#user-form").waitFor();
    await page.fill("#user-name", "ui-sensor-9");
    await page.check('#user-form input[value="manual"]');
    await page.click('#user-form button[type="submit"]');
    const secret = page.locator(".result code.secret");
    await secret.waitFor();
    const password = (await secret.textContent())!;
    assert.ok(password.length >= 20);
    const row = page.locator('#user-table tr[data-user="ui-sensor-9"]');
    assert.match((await row.textContent())!, /default.*manual/s);
    await shot(page, "09-users");
    const csr = await makeCsr(work, "ui-sensor-9");
    assert.equal((await enroll(`ui-sensor-9:${password}`, csr.csrB64)).status, 200);

    await row.locator("button").click();
    await row.locator("button", { hasText: "Confirm remove" }).click();
    await row.waitFor({ state: "detached" });
    assert.equal((await enroll(`ui-sensor-9:${password}`, csr.csrB64)).status, 401);
    (globalThis as { uiSensorPassword?: string }).uiSensorPassword = password;
  });

  test("every page is readable on a phone without sideways scrolling", async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    phone.setDefaultTimeout(20_000);
    const p = await phone.newPage();
    p.on("pageerror", (e) => pageErrors.push(e.message));
    await p.goto(`${srv.origin}/ui/`);
    await p.locator("#login-form").waitFor();
    await shot(p, "phone-01-login");
    await signIn(p);
    const pages: [string, string][] = [
      ["dashboard", ".stats"],
      ["certificates", "#cert-table"],
      [`certificates/${laptopSerial}`, "#cert-status"],
      ["approvals", ".page-head"],
      ["requests", "#req-body tr"],
      ["users", "#user-table"],
    ];
    let n = 2;
    for (const [hash, ready] of pages) {
      await p.goto(`${srv.origin}/ui/#/${hash}`);
      await p.locator(ready).first().waitFor();
      await assertNoHorizontalScroll(p, `phone ${hash}`);
      await shot(p, `phone-0${n++}-${hash.split("/")[0]}${hash.includes("/") ? "-detail" : ""}`);
    }
    await phone.close();
  });

  test("signing out ends the session", async () => {
    await page.click("#logout");
    await page.locator("#login-form").waitFor();
    const status = await page.evaluate(async () => (await fetch("/api/session")).status);
    assert.equal(status, 401);
    assert.deepEqual(pageErrors, [], "no script errors or CSP violations in the UI");
  });

  test("after repeated failures the sign-in page says how long to wait", async () => {
    await page.fill("#login-user", "intruder");
    for (let i = 0; i < 6; i++) {
      await page.fill("#login-password", `guess-number-${i}`);
      const answered = page.waitForResponse((r) => r.url().endsWith("/api/login"));
      await page.click("#login-submit");
      assert.equal((await answered).status(), i < 5 ? 401 : 429, `attempt ${i + 1}`);
    }
    await page.locator("#login-error", { hasText: "Too many failed sign-ins" }).waitFor();
    assert.match((await page.textContent("#login-error"))!, /try again in \d+ s/);
    await shot(page, "10-login-throttled");
  });

  test("the server log never contains a password used in this test", () => {
    const out = srv.output();
    const generated = (globalThis as { uiSensorPassword?: string }).uiSensorPassword;
    for (const secret of [inst.adminPassword, inst.estPassword, CAM_PASSWORD, WRONG_ADMIN_PASSWORD, "some-guess-1234", "guess-number-0", "guess-number-5", generated]) {
      if (secret) assert.ok(!out.includes(secret), `the log contains a password (${secret.slice(0, 4)}...)`);
    }
    assert.match(out, /"msg":"admin request"/);
  });
});
