// Issue 5: the admin JSON API, metrics, health and logs, driven with real curl against a real
// server (child process, SoftHSM token, SQLite, TLS on loopback).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import { type HttpResult, type InitResult, type Server, cleanup, curl, estca, initData, makeCsr, run, startServer, tempDir } from "./helpers/harness.ts";

const OPS_PASSWORD = "ops-correct-horse-battery-1";
const ADDED_PASSWORD = "added-user-password-77";

interface Api {
  (method: string, path: string, opts?: { json?: unknown; csrf?: string | null; contentType?: string; user?: string; noJar?: boolean }): Promise<HttpResult & { json: any }>;
  jar: string;
}

/** A curl-driven API client with its own cookie jar, like one browser. */
function apiClient(srv: Server, work: string, name: string): Api {
  const jar = join(work, `${name}.jar`);
  writeFileSync(jar, "");
  const call = (async (method, path, opts = {}) => {
    const headers: string[] = [];
    if (opts.csrf) headers.push(`X-CSRF-Token: ${opts.csrf}`);
    const body = opts.json === undefined ? undefined : JSON.stringify(opts.json);
    const r = await curl(`${srv.origin}/api${path}`, {
      method,
      cacert: srv.caPem,
      body,
      contentType: body !== undefined ? (opts.contentType ?? "application/json") : undefined,
      headers,
      user: opts.user,
      extra: opts.noJar ? [] : ["-b", jar, "-c", jar],
    });
    let json: unknown = null;
    try {
      json = JSON.parse(r.text);
    } catch {
      /* not JSON */
    }
    return { ...r, json };
  }) as Api;
  call.jar = jar;
  return call;
}

async function login(api: Api, username: string, password: string) {
  return api("POST", "/login", { json: { username, password } });
}

describe("admin API", () => {
  let inst: InitResult;
  let srv: Server;
  const work = tempDir();

  before(async () => {
    inst = await initData();
    const r = await estca(["user", "add", "ops", "--admin", "--password-stdin", "--data", inst.dir], { input: OPS_PASSWORD });
    assert.equal(r.code, 0, r.stderr);
    srv = await startServer(inst.dir);
  });
  after(async () => {
    await srv?.stop();
    cleanup(work);
    if (inst) cleanup(join(inst.dir, ".."));
  });

  test("unauthenticated calls get 401 with a JSON reason and no Basic challenge", async () => {
    const api = apiClient(srv, work, "anon");
    for (const [method, path] of [
      ["GET", "/dashboard"],
      ["GET", "/certificates"],
      ["GET", "/requests"],
      ["GET", "/approvals"],
      ["GET", "/users"],
      ["GET", "/session"],
      ["GET", "/no-such-endpoint"],
      ["POST", "/users"],
      ["POST", "/certificates/01/revoke"],
      ["DELETE", "/users/est"],
    ]) {
      const r = await api(method, path, method === "GET" ? {} : { json: {} });
      assert.equal(r.status, 401, `${method} ${path}: ${r.text}`);
      assert.match(r.json.error, /not signed in/);
      assert.equal(r.headers["www-authenticate"], undefined, "a Basic challenge would pop up the browser's own dialog");
      assert.match(r.headers["content-type"], /application\/json/);
    }
  });

  test("an EST Basic user cannot use the admin API, neither by Basic nor by signing in", async () => {
    const api = apiClient(srv, work, "est-user");
    const r = await api("GET", "/certificates", { user: `est:${inst.estPassword}` });
    assert.equal(r.status, 401);
    const l = await login(api, "est", inst.estPassword);
    assert.equal(l.status, 401, l.text);
    assert.match(l.json.error, /wrong user name or password/);
    assert.equal((await api("GET", "/dashboard")).status, 401);
  });

  test("signing in sets a HttpOnly, SameSite=Strict, Secure session cookie and returns a CSRF token", async () => {
    const api = apiClient(srv, work, "admin1");
    const r = await login(api, "admin", inst.adminPassword);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.user, "admin");
    assert.ok(typeof r.json.csrfToken === "string" && r.json.csrfToken.length >= 32);
    const cookie = r.rawHeaders.split("\r\n").find((l) => /^set-cookie:/i.test(l)) ?? "";
    assert.match(cookie, /__Host-estca_session=/);
    assert.match(cookie, /;\s*httponly/i);
    assert.match(cookie, /;\s*samesite=strict/i);
    assert.match(cookie, /;\s*secure/i);
    assert.match(cookie, /;\s*path=\//i);
    const s = await api("GET", "/session");
    assert.equal(s.status, 200);
    assert.equal(s.json.csrfToken, r.json.csrfToken);
    // The password is never echoed back.
    assert.doesNotMatch(r.text, new RegExp(inst.adminPassword));
  });

  test("state-changing calls need the session's CSRF token (403 without, 403 wrong) and a JSON body", async () => {
    const api = apiClient(srv, work, "admin2");
    const { json } = await login(api, "admin", inst.adminPassword);
    const body = { name: "csrf-victim", password: ADDED_PASSWORD, labels: ["default"] };
    const none = await api("POST", "/users", { json: body });
    assert.equal(none.status, 403, none.text);
    assert.match(none.json.error, /x-csrf-token/i);
    const wrong = await api("POST", "/users", { json: body, csrf: "A".repeat(json.csrfToken.length) });
    assert.equal(wrong.status, 403);
    const del = await api("DELETE", "/users/est");
    assert.equal(del.status, 403);
    const form = await api("POST", "/users", { json: body, csrf: json.csrfToken, contentType: "application/x-www-form-urlencoded" });
    assert.equal(form.status, 415, form.text);
    const users = await api("GET", "/users");
    assert.ok(!users.json.users.some((u: { name: string }) => u.name === "csrf-victim"), "nothing was created without a valid token");
    // Another session's token does not work either.
    const other = apiClient(srv, work, "admin3");
    const o = await login(other, "admin", inst.adminPassword);
    assert.equal((await api("POST", "/users", { json: body, csrf: o.json.csrfToken })).status, 403);
    const ok = await api("POST", "/users", { json: body, csrf: json.csrfToken });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.json.password, undefined, "a given password is not echoed");
    // Logging out ends the session server-side.
    assert.equal((await api("POST", "/logout", { json: {}, csrf: json.csrfToken })).status, 200);
    assert.equal((await api("GET", "/session")).status, 401);
  });

  test("users, certificates, revocation and approvals through the API", async () => {
    const api = apiClient(srv, work, "admin4");
    const { json: sess } = await login(api, "admin", inst.adminPassword);
    const csrf = sess.csrfToken;
    const added = await api("POST", "/users", { json: { name: "api-device", labels: ["default", "manual"] }, csrf });
    assert.equal(added.status, 201, added.text);
    assert.ok(added.json.password.length >= 20, "a generated password is returned once");
    assert.deepEqual(added.json.labels, ["default", "manual"]);
    assert.equal((await api("POST", "/users", { json: { name: "api-device" }, csrf })).status, 409);
    assert.equal((await api("POST", "/users", { json: { name: "bad name!" }, csrf })).status, 400);
    assert.equal((await api("POST", "/users", { json: { name: "x", labels: ["nope"] }, csrf })).status, 404);

    // The generated password works for EST.
    const csr = await makeCsr(work, "api-device", { sans: ["DNS:api-device.example"] });
    const e = await curl(`${srv.estBase}simpleenroll`, { method: "POST", cacert: srv.caPem, user: `api-device:${added.json.password}`, contentType: "application/pkcs10", body: csr.csrB64 });
    assert.equal(e.status, 200, e.text);

    const list = await api("GET", "/certificates?q=api-device&sort=subject&order=asc");
    assert.equal(list.status, 200);
    assert.equal(list.json.total, 1);
    const serial = list.json.items[0].serial;
    assert.deepEqual(list.json.items[0].sans, ["dns:api-device.example"]);
    assert.equal(list.json.items[0].requester, "user:api-device");
    assert.equal((await api("GET", "/certificates?sort=bogus")).status, 400);

    const detail = await api("GET", `/certificates/${serial}`);
    assert.equal(detail.status, 200);
    assert.match(detail.json.pem, /^-----BEGIN CERTIFICATE-----/);
    const pem = await api("GET", `/certificates/${serial}/pem`);
    assert.equal(pem.status, 200);
    assert.match(pem.headers["content-disposition"], /attachment; filename="[0-9a-f]+\.pem"/);
    const pemFile = join(work, "api-device.pem");
    writeFileSync(pemFile, pem.body);
    const v = await run("openssl", ["verify", "-CAfile", srv.caPem, pemFile]);
    assert.equal(v.code, 0, v.stdout + v.stderr);

    assert.equal((await api("POST", `/certificates/${serial}/revoke`, { json: { reason: "bogus" }, csrf })).status, 400);
    const rv = await api("POST", `/certificates/${serial}/revoke`, { json: { reason: "keyCompromise" }, csrf });
    assert.equal(rv.status, 200, rv.text);
    assert.equal(rv.json.status, "revoked");
    assert.equal(rv.json.revocationReason, "keyCompromise");
    const again = await api("POST", `/certificates/${serial}/revoke`, { json: { reason: "keyCompromise" }, csrf });
    assert.equal(again.status, 409);
    assert.match(again.json.error, /already revoked/);
    assert.equal((await api("GET", "/certificates/zz")).status, 400);
    assert.equal((await api("GET", "/certificates/0123abcd")).status, 404);

    // A held request: reject without reason is refused, with a reason the client is told it.
    const held = await makeCsr(work, "api-held");
    const p = await curl(`${srv.estBase}manual/simpleenroll`, { method: "POST", cacert: srv.caPem, user: `api-device:${added.json.password}`, contentType: "application/pkcs10", body: held.csrB64 });
    assert.equal(p.status, 202, p.text);
    const pending = await api("GET", "/approvals");
    const item = pending.json.find((x: { subject: string }) => x.subject === "CN=api-held");
    assert.ok(item, JSON.stringify(pending.json));
    assert.equal((await api("POST", `/approvals/${item.id}/reject`, { json: {}, csrf })).status, 400);
    const rej = await api("POST", `/approvals/${item.id}/reject`, { json: { reason: "not an inventory device" }, csrf });
    assert.equal(rej.status, 200, rej.text);
    assert.equal((await api("POST", `/approvals/${item.id}/approve`, { json: {}, csrf })).status, 409);
    const p2 = await curl(`${srv.estBase}manual/simpleenroll`, { method: "POST", cacert: srv.caPem, user: `api-device:${added.json.password}`, contentType: "application/pkcs10", body: held.csrB64 });
    assert.equal(p2.status, 403);
    assert.match(p2.text, /not an inventory device/);

    const rm = await api("DELETE", "/users/api-device", { csrf });
    assert.equal(rm.status, 200);
    assert.equal((await api("DELETE", "/users/api-device", { csrf })).status, 404);
  });

  test("the request log is incremental (afterId) and filters by client", async () => {
    const api = apiClient(srv, work, "admin5");
    await login(api, "admin", inst.adminPassword);
    const first = await api("GET", "/requests?limit=1");
    const top = first.json[0]?.id ?? 0;
    const bad = await curl(`${srv.estBase}simpleenroll`, { method: "POST", cacert: srv.caPem, user: "nobody-here:secret-value-1", contentType: "application/pkcs10", body: "AAAA" });
    assert.equal(bad.status, 401);
    const fresh = await api("GET", `/requests?afterId=${top}`);
    assert.equal(fresh.json.length, 1, JSON.stringify(fresh.json));
    assert.equal(fresh.json[0].reason, 'unknown user "nobody-here"');
    assert.equal(fresh.json[0].clientIdentity, "user:nobody-here");
    assert.match(fresh.json[0].tlsVersion, /^TLSv1\.[23]$/);
    assert.equal((await api("GET", `/requests?afterId=${fresh.json[0].id}`)).json.length, 0);
    const filtered = await api("GET", "/requests?client=nobody-here");
    assert.ok(filtered.json.length >= 1 && filtered.json.every((r: { clientIdentity: string }) => r.clientIdentity === "user:nobody-here"));
    assert.equal((await api("GET", "/requests?afterId=-1")).status, 400);
  });

  test("the dashboard's curl+openssl and strongSwan command lines enroll for real", async () => {
    const api = apiClient(srv, work, "admin6");
    await login(api, "admin", inst.adminPassword);
    const d = (await api("GET", "/dashboard")).json;
    assert.match(d.ca.subject, /CN=estca Root CA/);
    assert.equal(d.key.tokenLabel, "estca");
    assert.match(d.key.mechanism, /^CKM_ECDSA/);
    assert.match(d.key.module, /softhsm/i);
    assert.ok(d.ca.daysLeft > 3000);
    assert.equal(d.rollover.state, "none");
    assert.equal(d.issuance.length, 30);
    assert.ok(d.est.labels.some((l: { label: string; approval: string }) => l.label === "manual" && l.approval === "manual"));
    assert.ok(d.est.baseUrl.startsWith(srv.origin));
    for (const [name, script] of [["curl", d.commands.curl], ["strongswan", d.commands.strongswan]] as const) {
      const dir = tempDir(`estca-cmd-${name}-`);
      copyFileSync(srv.caPem, join(dir, "ca.pem"));
      writeFileSync(join(dir, "run.sh"), "set -euo pipefail\n" + script.replaceAll("USER:PASSWORD", `est:${inst.estPassword}`) + "\n");
      const r = await run("bash", [join(dir, "run.sh")], { cwd: dir, timeoutMs: 120_000 });
      assert.equal(r.code, 0, `${name}: ${r.stdout}\n${r.stderr}`);
      const v = await run("openssl", ["verify", "-CAfile", srv.caPem, join(dir, "device.pem")]);
      assert.equal(v.code, 0, `${name}: ${v.stdout}${v.stderr}`);
      cleanup(dir);
    }
  });

  test("the UI is served over TLS with a strict CSP, and neither UI nor API on the plain http port", async () => {
    const ui = await curl(`${srv.origin}/ui/`, { cacert: srv.caPem });
    assert.equal(ui.status, 200);
    assert.match(ui.headers["content-type"], /text\/html/);
    assert.match(ui.headers["content-security-policy"], /default-src 'self'/);
    assert.match(ui.headers["content-security-policy"], /frame-ancestors 'none'/);
    assert.equal(ui.headers["x-content-type-options"], "nosniff");
    assert.match(ui.text, /<script src="app.js"/);
    assert.equal((await curl(`${srv.origin}/ui/app.js`, { cacert: srv.caPem })).status, 200);
    assert.equal((await curl(`${srv.origin}/ui/../config.yaml`, { cacert: srv.caPem, extra: ["--path-as-is"] })).status, 404);
    assert.equal((await curl(`${srv.httpBase}/ui/`)).status, 404);
    assert.equal((await curl(`${srv.httpBase}/api/login`, { method: "POST", contentType: "application/json", body: "{}" })).status, 404);
  });

  test("/healthz and /readyz answer on the http port", async () => {
    const h = await curl(`${srv.httpBase}/healthz`);
    assert.equal(h.status, 200);
    const r = await curl(`${srv.httpBase}/readyz`);
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /ready/);
  });

  test("repeated failed logins are throttled: 429 with Retry-After, even for the right password", async () => {
    const api = apiClient(srv, work, "guesser");
    for (let i = 0; i < 5; i++) {
      const r = await login(api, "ops", `wrong-guess-${i}`);
      assert.equal(r.status, 401, `attempt ${i + 1}: ${r.text}`);
    }
    const t = await login(api, "ops", OPS_PASSWORD);
    assert.equal(t.status, 429, t.text);
    const wait = Number(t.headers["retry-after"]);
    assert.ok(Number.isInteger(wait) && wait > 0, `Retry-After: ${t.headers["retry-after"]}`);
    assert.match(t.json.error, /too many failed sign-ins/);
    // The lock is on that account from this address, not on every administrator.
    const other = apiClient(srv, work, "admin7");
    assert.equal((await login(other, "admin", inst.adminPassword)).status, 200);
  });

  test("/metrics: requests by operation and status, issuance and HSM latency, certificates by status", async () => {
    const m = await curl(`${srv.httpBase}/metrics`);
    assert.equal(m.status, 200);
    assert.match(m.headers["content-type"], /text\/plain/);
    const value = (re: RegExp) => {
      const line = m.text.split("\n").find((l) => re.test(l));
      assert.ok(line, `no line matching ${re}`);
      return Number(line.split(" ").pop());
    };
    assert.ok(value(/^estca_est_requests_total\{operation="simpleenroll",status="200"\} /) >= 2);
    assert.ok(value(/^estca_est_requests_total\{operation="simpleenroll",status="401"\} /) >= 1);
    assert.ok(value(/^estca_est_requests_total\{operation="simpleenroll",status="202"\} /) >= 1);
    assert.ok(value(/^estca_issuance_duration_seconds_count\{operation="simpleenroll"\} /) >= 2);
    assert.ok(value(/^estca_hsm_sign_duration_seconds_count\{key_type="ec-p256",hash="SHA-256"\} /) >= 2);
    assert.match(m.text, /^estca_hsm_sign_duration_seconds_bucket\{le="0\.005",key_type="ec-p256",hash="SHA-256"\} \d+$/m);
    assert.equal(value(/^estca_certificates\{status="revoked"\} /), 1);
    assert.ok(value(/^estca_certificates\{status="valid"\} /) >= 1);
    assert.equal(value(/^estca_enrollments_pending /), 0);
    assert.ok(value(/^estca_admin_logins_total\{result="throttled"\} /) >= 1);
    assert.ok(value(/^estca_admin_logins_total\{result="refused"\} /) >= 5);
  });

  test("logs are JSON lines with request ids and never contain a password", async () => {
    const out = srv.output();
    const lines = out.split("\n").filter((l) => l.startsWith("{"));
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const est = entries.filter((e) => e.msg === "est request");
    const admin = entries.filter((e) => e.msg === "admin request");
    assert.ok(est.length >= 3 && est.every((e) => typeof e.reqId === "string" && (e.reqId as string).length >= 32), "EST request lines carry a request id");
    assert.ok(admin.length >= 10 && admin.every((e) => typeof e.reqId === "string"), "admin request lines carry a request id");
    assert.ok(entries.some((e) => e.msg === "admin login throttled"));
    for (const secret of [inst.adminPassword, inst.estPassword, OPS_PASSWORD, ADDED_PASSWORD, "wrong-guess-0", "secret-value-1"]) {
      assert.ok(!out.includes(secret), `the log contains a password (${secret.slice(0, 4)}...)`);
    }
    const pin = readFileSync(join(inst.dir, "hsm-pin"), "utf8").trim();
    assert.ok(!out.includes(pin), "the log contains the token PIN");
    assert.doesNotMatch(out, /PRIVATE KEY/);
  });
});

describe("admin API with --workers 2", () => {
  let inst: InitResult;
  let srv: Server;
  const work = tempDir();

  before(async () => {
    inst = await initData();
    srv = await startServer(inst.dir, { args: ["--workers", "2"] });
  });
  after(async () => {
    await srv?.stop();
    cleanup(work);
    if (inst) cleanup(join(inst.dir, ".."));
  });

  test("a session and the sign-in throttle hold whichever process answers", async () => {
    const api = apiClient(srv, work, "workers");
    const { json } = await login(api, "admin", inst.adminPassword);
    // Each curl is a new connection; the cluster hands them to the workers in turn.
    for (let i = 0; i < 6; i++) {
      const r = await api("GET", "/session");
      assert.equal(r.status, 200, `request ${i + 1}: ${r.text}`);
      assert.equal(r.json.csrfToken, json.csrfToken);
    }
    const added = await api("POST", "/users", { json: { name: "w-user" }, csrf: json.csrfToken });
    assert.equal(added.status, 201, added.text);
    const guesser = apiClient(srv, work, "workers-guess");
    for (let i = 0; i < 5; i++) assert.equal((await login(guesser, "admin", `nope-${i}`)).status, 401);
    for (let i = 0; i < 3; i++) assert.equal((await login(guesser, "admin", inst.adminPassword)).status, 429, `attempt ${i + 6}`);
    assert.equal((await api("POST", "/logout", { json: {}, csrf: json.csrfToken })).status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await api("GET", "/session")).status, 401);
  });

  test("/metrics sums every worker's counters, whichever worker answers", async () => {
    for (let i = 0; i < 4; i++) {
      const csr = await makeCsr(work, `w-dev-${i}`);
      const r = await curl(`${srv.estBase}simpleenroll`, { method: "POST", cacert: srv.caPem, user: `est:${inst.estPassword}`, contentType: "application/pkcs10", body: csr.csrB64 });
      assert.equal(r.status, 200, r.text);
    }
    for (let i = 0; i < 4; i++) {
      const m = await curl(`${srv.httpBase}/metrics`);
      assert.equal(m.status, 200);
      assert.match(m.text, /^estca_est_requests_total\{operation="simpleenroll",status="200"\} 4$/m, `scrape ${i + 1}`);
      assert.match(m.text, /^estca_issuance_duration_seconds_count\{operation="simpleenroll"\} 4$/m);
      // Read from the shared store by each worker, and counted once.
      assert.match(m.text, /^estca_certificates\{status="valid"\} 4$/m);
    }
  });
});
