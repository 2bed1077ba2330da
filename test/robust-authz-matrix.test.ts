// Issue 7.5: the authorization matrix. Every EST operation under every kind of credential, with
// curl as the client over real TLS; and EST credentials against the admin API. The expected table
// below is the one in README.md (section security) and docs/SECURITY.md: change them together.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type InitResult, type Server, cleanup, curl, estca, initData, makeCsr, run, startServer, tempDir } from "./helpers/harness.ts";
import { editConfig, saveCert, x509Csr } from "./helpers/est.ts";
import { fullCmcRequest } from "./helpers/cmc-client.ts";

const OPS = ["cacerts", "csrattrs", "simpleenroll", "serverkeygen", "fullcmc", "simplereenroll"] as const;
type Op = (typeof OPS)[number];

/**
 * Rows: credential; statuses in the order of OPS; the reason every 4xx of the row must give (so a
 * 403 is refused for the right cause). simplereenroll comes last: it supersedes what it renews.
 */
const MATRIX: [string, number[], RegExp][] = [
  ["no credentials", [200, 200, 401, 401, 401, 401], /no credentials: profile "default" needs/],
  ["wrong password", [200, 200, 401, 401, 401, 401], /wrong password for user "est"/],
  ["right password for another label", [200, 200, 403, 403, 403, 403], /user "serveronly" may use profile "server", not "default"/],
  ["right password on a manual-approval label (/manual/)", [200, 200, 202, 202, 202, 403], /simplereenroll needs the TLS client certificate/],
  ["certificate from this CA", [200, 200, 200, 200, 200, 200], /^$/],
  ["revoked certificate from this CA", [200, 200, 403, 403, 403, 403], /is revoked \(keyCompromise\)/],
  ["expired certificate from this CA", [200, 200, 403, 403, 403, 403], /expired on/],
  ["certificate from a foreign CA", [200, 200, 401, 401, 401, 401], /was not issued by this CA or by a trust anchor of profile "default"/],
  ["IDevID certificate, on a label that does not trust its CA", [200, 200, 403, 403, 403, 403], /from an external CA trusted by profile "iot", not by "default"/],
  ["IDevID certificate, on the label that trusts its CA (/iot/)", [200, 200, 200, 200, 200, 403], /simplereenroll needs the TLS client certificate being renewed, issued by this CA/],
  ["admin session cookie used against EST", [200, 200, 401, 401, 401, 401], /no credentials/],
  ["admin password as HTTP Basic against EST", [200, 200, 401, 401, 401, 401], /unknown user "admin"/],
];

const ADMIN_CALLS: [string, string][] = [
  ["GET", "/api/session"],
  ["GET", "/api/certificates"],
  ["GET", "/api/requests"],
  ["GET", "/api/users"],
  ["POST", "/api/users"],
  ["POST", "/api/certificates/01/revoke"],
];
/** EST credentials against the admin API: every cell is 401. */
const ADMIN_ROWS = ["EST user's HTTP Basic credentials", "client certificate from this CA"];

async function openssl(args: string[]): Promise<void> {
  const r = await run("openssl", args);
  assert.equal(r.code, 0, `openssl ${args.join(" ")}: ${r.stderr}`);
}

/** A CA made with openssl (not estca) and a clientAuth certificate under it. */
async function opensslCa(dir: string, name: string): Promise<{ caPem: string; cert: string; key: string }> {
  const caKey = join(dir, `${name}-ca.key`);
  const caPem = join(dir, `${name}-ca.pem`);
  await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", caKey, "-out", caPem, "-days", "30", "-subj", `/CN=${name} CA`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  const csr = await makeCsr(dir, `${name}-device`, { subject: `/CN=${name}-device`, sans: [`DNS:${name}-device.example`] });
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:${name}-device.example\n`);
  const cert = join(dir, `${name}-device.pem`);
  await openssl(["x509", "-req", "-in", csr.csrFile, "-CA", caPem, "-CAkey", caKey, "-CAcreateserial", "-days", "10", "-extfile", ext, "-out", cert]);
  return { caPem, cert, key: csr.keyFile };
}

describe("authorization matrix", () => {
  let inst: InitResult;
  let srv: Server;
  const work = tempDir();
  const creds: Record<string, { label?: string; user?: string; cert?: string; key?: string; headers?: string[]; subject: string; san: string }> = {};
  const results: string[] = [];

  before(async () => {
    inst = await initData();
    const idevid = await opensslCa(work, "idevid");
    writeFileSync(join(inst.dir, "idevid-ca.pem"), readFileSync(idevid.caPem), { mode: 0o600 });
    editConfig(inst.dir, (c) => {
      c.profiles.iot = { description: "devices with a manufacturer IDevID", externalTrustAnchors: ["idevid-ca.pem"] };
    });
    for (const [user, label] of [["serveronly", "server"], ["approver-needed", "manual"]]) {
      const r = await estca(["user", "add", user, "--password-stdin", "--label", label, "--data", inst.dir], { input: `${user}-password-123\n` });
      assert.equal(r.code, 0, r.stderr);
    }
    srv = await startServer(inst.dir);
    const basic = `est:${inst.estPassword}`;

    // Certificates of this CA: a good one, one to revoke, one that has expired.
    const own = async (name: string) => {
      const csr = await makeCsr(work, name, { subject: `/CN=${name}`, sans: [`DNS:${name}.example`] });
      const r = await curl(`${srv.estBase}simpleenroll`, { cacert: srv.caPem, user: basic, contentType: "application/pkcs10", body: csr.csrB64 });
      assert.equal(r.status, 200, r.text);
      const file = join(work, `${name}.pem`);
      const { serial } = await saveCert(r, file);
      return { cert: file, key: csr.keyFile, serial };
    };
    const good = await own("matrix-good");
    const revoked = await own("matrix-revoked");
    const rv = await estca(["revoke", revoked.serial, "--reason", "keyCompromise", "--data", inst.dir]);
    assert.equal(rv.code, 0, rv.stderr);
    // Expired: issued by the real CA key in the token, by a process whose clock says three days ago.
    const expCsr = await makeCsr(work, "matrix-expired", { subject: "/CN=matrix-expired", sans: ["DNS:matrix-expired.example"] });
    const script = `
      import { readFileSync } from "node:fs";
      import { openInstance } from ${JSON.stringify(join(import.meta.dirname, "..", "src", "instance", "open.ts"))};
      import { RegistrationAuthority } from ${JSON.stringify(join(import.meta.dirname, "..", "src", "ra", "registration-authority.ts"))};
      import { toPem } from ${JSON.stringify(join(import.meta.dirname, "..", "src", "pki", "encoding.ts"))};
      const realNow = Date.now();
      Date.now = () => realNow - 3 * 86400_000;
      const i = openInstance(process.argv[1], (c) => ({ ...c, profiles: { ...c.profiles, default: { ...c.profiles.default, validityDays: 1 } } }));
      const ra = new RegistrationAuthority(i.ca, i.store, i.config, i.paths.dir);
      const issued = await ra.issueOffline("default", readFileSync(process.argv[2]), "test:clock-in-the-past");
      process.stdout.write(toPem(issued.der, "CERTIFICATE"));
      i.close();`;
    const expDer = join(work, "matrix-expired.der");
    writeFileSync(expDer, expCsr.csrDer);
    const ex = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, inst.dir, expDer]);
    assert.equal(ex.code, 0, ex.stderr);
    const expired = join(work, "matrix-expired.pem");
    writeFileSync(expired, ex.stdout);
    const notAfter = (await run("openssl", ["x509", "-in", expired, "-noout", "-enddate"])).stdout;
    assert.ok(new Date(notAfter.split("=")[1]).getTime() < Date.now(), `not expired: ${notAfter}`);

    const foreign = await opensslCa(work, "foreign");

    // An administrator's session, as the web UI holds it.
    const login = await curl(`${srv.origin}/api/login`, { cacert: srv.caPem, method: "POST", contentType: "application/json", body: JSON.stringify({ username: "admin", password: inst.adminPassword }) });
    assert.equal(login.status, 200, login.text);
    const cookie = login.rawHeaders.match(/^set-cookie: ([^;\r\n]+)/im)?.[1];
    assert.ok(cookie, login.rawHeaders);
    const csrf = JSON.parse(login.text).csrfToken as string;

    const s = (name: string) => ({ subject: `/CN=${name}`, san: `DNS:${name}.example` });
    creds["no credentials"] = s("anon");
    creds["wrong password"] = { user: "est:not-the-password", ...s("wrongpw") };
    creds["right password for another label"] = { user: "serveronly:serveronly-password-123", ...s("otherlabel") };
    creds["right password on a manual-approval label (/manual/)"] = { label: "manual", user: "approver-needed:approver-needed-password-123", ...s("manual") };
    creds["certificate from this CA"] = { cert: good.cert, key: good.key, ...s("matrix-good") };
    creds["revoked certificate from this CA"] = { cert: revoked.cert, key: revoked.key, ...s("matrix-revoked") };
    creds["expired certificate from this CA"] = { cert: expired, key: expCsr.keyFile, ...s("matrix-expired") };
    creds["certificate from a foreign CA"] = { cert: foreign.cert, key: foreign.key, ...s("foreign-device") };
    creds["IDevID certificate, on a label that does not trust its CA"] = { cert: idevid.cert, key: idevid.key, ...s("idevid-device") };
    creds["IDevID certificate, on the label that trusts its CA (/iot/)"] = { label: "iot", cert: idevid.cert, key: idevid.key, ...s("idevid-device") };
    creds["admin session cookie used against EST"] = { headers: [`Cookie: ${cookie}`, `X-CSRF-Token: ${csrf}`], ...s("admin-cookie") };
    creds["admin password as HTTP Basic against EST"] = { user: `admin:${inst.adminPassword}`, ...s("admin-basic") };
    creds.ownCert = { cert: good.cert, key: good.key, ...s("x") };
  });
  after(async () => {
    await srv?.stop();
    if (results.length) console.log(results.join("\n"));
    cleanup(work);
    if (inst) cleanup(join(inst.dir, ".."));
  });

  test(`every EST operation under every credential (${MATRIX.length} x ${OPS.length} cells)`, async () => {
    let cells = 0;
    const wrong: string[] = [];
    for (const [row, expected, reason] of MATRIX) {
      const c = creds[row];
      assert.ok(c, `no credential set up for "${row}"`);
      // A CSR for the subject the credential holds, so a reenroll is judged on authorization alone.
      const csr = await x509Csr({ subject: c.subject.replace(/^\//, ""), sans: [{ type: "dns", value: c.san.slice(4) }] });
      const got: number[] = [];
      for (const op of OPS) {
        const url = `${srv.estBase}${c.label ? c.label + "/" : ""}${op}`;
        const post = !["cacerts", "csrattrs"].includes(op);
        const body = !post ? undefined : op === "fullcmc" ? (await fullCmcRequest(csr)).toString("base64") : csr.b64;
        const r = await curl(url, {
          cacert: srv.caPem,
          method: post ? "POST" : "GET",
          user: c.user,
          cert: c.cert,
          key: c.key,
          headers: c.headers,
          contentType: post ? (op === "fullcmc" ? "application/pkcs7-mime" : "application/pkcs10") : undefined,
          body,
        });
        got.push(r.status);
        cells++;
        const want = expected[OPS.indexOf(op as Op)];
        if (r.status !== want) wrong.push(`${row} / ${op}: expected ${want}, got ${r.status} ${r.text.slice(0, 160).trim()}`);
        else if (r.status >= 400) {
          // A /fullcmc refusal may be a CMC response; its statusString (UTF8String) is in the DER as is.
          const text = /CMC-response/.test(r.headers["content-type"] ?? "") ? Buffer.from(r.text, "base64").toString("utf8") : r.text;
          if (!reason.test(text)) wrong.push(`${row} / ${op}: ${r.status} for another reason: ${text.trim()}`);
        }
      }
      results.push(`matrix: ${row.padEnd(62)} ${got.join(" ")}`);
    }
    console.log(`matrix: ${cells} EST cells checked (${OPS.join(", ")})`);
    assert.deepEqual(wrong, []);
  });

  test("EST credentials open nothing in the admin API", async () => {
    let cells = 0;
    const wrong: string[] = [];
    const login = await curl(`${srv.origin}/api/login`, { cacert: srv.caPem, method: "POST", contentType: "application/json", body: JSON.stringify({ username: "est", password: inst.estPassword }) });
    cells++;
    if (login.status !== 401) wrong.push(`EST user's password at /api/login: ${login.status} ${login.text}`);
    for (const row of ADMIN_ROWS) {
      for (const [method, path] of ADMIN_CALLS) {
        const c = row.startsWith("EST user") ? { user: `est:${inst.estPassword}` } : { cert: creds.ownCert.cert, key: creds.ownCert.key };
        const r = await curl(`${srv.origin}${path}`, { cacert: srv.caPem, method, ...c, contentType: method === "POST" ? "application/json" : undefined, body: method === "POST" ? "{}" : undefined });
        cells++;
        if (r.status !== 401) wrong.push(`${row} ${method} ${path}: ${r.status} ${r.text.slice(0, 160)}`);
      }
    }
    console.log(`matrix: ${cells} admin-API cells checked, all 401`);
    assert.deepEqual(wrong, []);
  });
});
