// Issue 4: revocation, CRL (RFC 5280) and OCSP (RFC 6960), checked with openssl and curl as separate processes.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type InitResult, type Server, cleanup, curl, estca, initData, makeCsr, run, runBinary, startServer, tempDir } from "./helpers/harness.ts";
import { editConfig, requestLog, saveCert } from "./helpers/est.ts";
import { SRC, inInstance } from "./helpers/lifecycle.ts";

const POLL = { ESTCA_LIFECYCLE_POLL_MS: "300" };

function assertCleanFailure(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.notEqual(r.code, 0, "exit status must be non-zero");
  assert.match(r.stderr, pattern);
  assert.match(r.stderr, /^estca: /);
  assert.equal(r.stderr.trim().split("\n").length, 1, `one line, got: ${r.stderr}`);
}

/** The CRL at `url` as PEM in `file`, and its number and validity as openssl reads them. */
async function fetchCrl(url: string, file: string): Promise<{ number: number; lastUpdate: Date; nextUpdate: Date; text: string }> {
  const r = await curl(url);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers["content-type"], "application/pkix-crl");
  const pem = await runBinary("openssl", ["crl", "-inform", "DER", "-outform", "PEM"], r.body);
  assert.equal(pem.code, 0, pem.stderr);
  writeFileSync(file, pem.stdout);
  const text = (await run("openssl", ["crl", "-in", file, "-noout", "-text"])).stdout;
  const num = /X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text);
  assert.ok(num, text);
  const last = /Last Update: (.+)/.exec(text)![1];
  const next = /Next Update: (.+)/.exec(text)![1];
  return { number: Number(num[1]), lastUpdate: new Date(last), nextUpdate: new Date(next), text };
}

/** `openssl ocsp` against the responder; returns the combined output. */
async function ocsp(srv: Server, issuer: string, cert: string, extra: string[] = []): Promise<string> {
  const r = await run("openssl", ["ocsp", "-issuer", issuer, "-cert", cert, "-url", `${srv.httpBase}/ocsp`, "-CAfile", srv.caPem, ...extra]);
  return r.stdout + r.stderr;
}

describe("revocation, CRL and OCSP", () => {
  let inst: InitResult;
  let srv: Server;
  const work = tempDir();
  const root = join(work, "root.pem");
  const certs: Record<string, { file: string; key: string; serial: string }> = {};

  async function enroll(name: string) {
    const csr = await makeCsr(work, name, { sans: [`DNS:${name}.example`] });
    const r = await curl(`${srv.estBase}simpleenroll`, { cacert: srv.caPem, user: `est:${inst.estPassword}`, contentType: "application/pkcs10", body: csr.csrB64 });
    assert.equal(r.status, 200, r.text);
    const file = join(work, `${name}.pem`);
    const { serial } = await saveCert(r, file);
    certs[name] = { file, key: csr.keyFile, serial };
  }

  before(async () => {
    inst = await initData();
    srv = await startServer(inst.dir, { env: POLL });
    const r = await run("openssl", ["x509", "-in", srv.caPem, "-out", root]);
    assert.equal(r.code, 0, r.stderr);
    await enroll("good");
    await enroll("bad");
    await enroll("other");
  });
  after(async () => {
    await srv?.stop();
    cleanup(work);
    cleanup(join(inst.dir, ".."));
  });

  test("issued certificates carry the CRL and OCSP URLs of the http port", async () => {
    const text = (await run("openssl", ["x509", "-in", certs.good.file, "-noout", "-text"])).stdout;
    assert.match(text, /CRL Distribution Points:[\s\S]*URI:http:\/\/[^/]+\/crl\/1\.crl/);
    assert.match(text, /OCSP - URI:http:\/\/[^/]+\/ocsp/);
    assert.match(text, /CA Issuers - URI:http:\/\/[^/]+\/ca\/1\.crt/);
    const ca = await curl(`${srv.httpBase}/ca/1.crt`);
    assert.equal(ca.status, 200);
    assert.equal(ca.headers["content-type"], "application/pkix-cert");
    const rootDer = await runBinary("openssl", ["x509", "-in", root, "-outform", "DER"]);
    assert.deepEqual(ca.body, rootDer.stdout);
    assert.equal((await curl(`${srv.httpBase}/ca/9.crt`)).status, 404);
    const bad = await curl(`${srv.httpBase}/crl/nope.crl`);
    assert.equal(bad.status, 404);
    assert.match(bad.text, /names are GENERATION\.crl/);
  });

  test("OCSP says good, echoes the nonce, and is signed by a delegated responder with id-pkix-ocsp-nocheck", async () => {
    const out = await ocsp(srv, root, certs.good.file, ["-resp_text"]);
    assert.match(out, /Response verify OK/);
    assert.match(out, new RegExp(`${certs.good.file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: good`));
    assert.match(out, /OCSP Nonce:/);
    assert.doesNotMatch(out, /WARNING: no nonce/i);
    assert.match(out, /OCSP No Check/);
    assert.match(out, /OCSP Signing/);
    // An unknown serial under our issuer is "unknown", not "good".
    const unknown = await run("openssl", ["ocsp", "-issuer", root, "-serial", "0x1234567890abcdef", "-url", `${srv.httpBase}/ocsp`, "-CAfile", srv.caPem]);
    assert.match(unknown.stdout + unknown.stderr, /0x1234567890abcdef: unknown/);
    // Garbage is answered with an OCSP error status, not a crash.
    const garbage = await curl(`${srv.httpBase}/ocsp`, { method: "POST", body: "not der", contentType: "application/ocsp-request" });
    assert.equal(garbage.status, 200);
    const garbageFile = join(work, "garbage.resp");
    writeFileSync(garbageFile, garbage.body);
    const parsed = await run("openssl", ["ocsp", "-respin", garbageFile, "-resp_text", "-noverify"]);
    assert.match(parsed.stdout + parsed.stderr, /malformedrequest/i);
  });

  test("a delegated responder certificate is renewed under the same token key before it runs out", async () => {
    const r = await inInstance(
      inst.dir,
      `const { OcspResponder } = await import(${JSON.stringify(join(SRC, "ca", "ocsp.ts"))});
      const o = new OcspResponder(i.ca, { delegated: true, validityMinutes: 60 });
      const a = await o.signerFor(i.ca.issuer);
      const b = await o.signerFor(i.ca.issuer, Date.now() + 6 * 86400_000);
      const p = i.km.protection(b.key.ref);
      return { sameKey: a.key.ref.label === b.key.ref.label, newCert: a.recordId !== b.recordId, extractable: p.extractable,
        statuses: i.store.caCerts.all().filter((c) => c.role === "ocsp").map((c) => c.status) };`,
    );
    assert.deepEqual(r, { sameKey: true, newCert: true, extractable: false, statuses: ["retired", "active"] });
    // The running server still answers, with whichever responder it holds.
    const out = await ocsp(srv, root, certs.good.file);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: good/);
  });

  test("estca revoke: revoked certificates fail reenroll with 403, CRL and OCSP say revoked, with time and reason", async () => {
    const crlBefore = await fetchCrl(`${srv.httpBase}/crl/1.crl`, join(work, "crl-before.pem"));
    // Config defaults: 24 h between thisUpdate and nextUpdate.
    assert.equal(crlBefore.nextUpdate.getTime() - crlBefore.lastUpdate.getTime(), 24 * 3600_000);

    // The certificate authenticates a reenroll while it is valid.
    const csr = await makeCsr(work, "bad-re", { keyFile: certs.bad.key, subject: "/CN=bad", sans: ["DNS:bad.example"] });
    const ok = await curl(`${srv.estBase}simplereenroll`, { cacert: srv.caPem, cert: certs.bad.file, key: certs.bad.key, contentType: "application/pkcs10", body: csr.csrB64 });
    assert.equal(ok.status, 200, ok.text);
    const { serial: renewed } = await saveCert(ok, join(work, "bad-renewed.pem"));
    certs.renewed = { file: join(work, "bad-renewed.pem"), key: certs.bad.key, serial: renewed };

    // Revoked from the CLI (another process) while the server runs.
    const rev = await estca(["revoke", renewed, "--reason", "keyCompromise", "--data", inst.dir]);
    assert.equal(rev.code, 0, rev.stderr);
    assert.match(rev.stdout, new RegExp(`revoked ${renewed} \\(CN=bad\\) at .*reason keyCompromise`));
    assert.match(rev.stdout, /published CRL number \d+ of generation 1/);

    const denied = await curl(`${srv.estBase}simplereenroll`, { cacert: srv.caPem, cert: certs.renewed.file, key: certs.renewed.key, contentType: "application/pkcs10", body: csr.csrB64 });
    assert.equal(denied.status, 403, denied.text);
    assert.match(denied.text, new RegExp(`${renewed} \\(CN=bad\\) is revoked \\(keyCompromise\\)`));
    const log = await requestLog(inst.dir, 5);
    const entry = log.find((e) => e.operation === "simplereenroll" && e.status === 403);
    assert.ok(entry, JSON.stringify(log));
    assert.match(entry.reason ?? "", /is revoked \(keyCompromise\)/);

    // Twice, or an unknown serial: one clear line each.
    assertCleanFailure(await estca(["revoke", renewed, "--data", inst.dir]), new RegExp(`certificate ${renewed} is already revoked \\(since .*, keyCompromise\\)`));
    assertCleanFailure(await estca(["revoke", "0badc0ffee", "--data", inst.dir]), /no certificate with serial 0badc0ffee/);
    assertCleanFailure(await estca(["revoke", "xyz", "--data", inst.dir]), /"xyz" is not a hexadecimal serial number/);
    const badReason = await estca(["revoke", renewed, "--reason", "becauseISaidSo", "--data", inst.dir]);
    assert.notEqual(badReason.code, 0);
    assert.match(badReason.stderr, /Allowed choices are unspecified, keyCompromise/);

    // The CRL is republished with a larger number and lists the certificate with its reason.
    const crlAfter = await fetchCrl(`${srv.httpBase}/crl/1.crl`, join(work, "crl-after.pem"));
    assert.ok(crlAfter.number > crlBefore.number, `CRL number ${crlAfter.number} > ${crlBefore.number}`);
    assert.match(crlAfter.text, new RegExp(`Serial Number: ${renewed.toUpperCase()}[\\s\\S]*?Key Compromise`));
    const current = await fetchCrl(`${srv.httpBase}/crl`, join(work, "crl-current.pem"));
    assert.ok(current.number >= crlAfter.number);

    // openssl verify -crl_check: the good certificate passes, the revoked one does not.
    const good = await run("openssl", ["verify", "-crl_check", "-CAfile", srv.caPem, "-CRLfile", join(work, "crl-after.pem"), certs.good.file]);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /: OK/);
    const bad = await run("openssl", ["verify", "-crl_check", "-CAfile", srv.caPem, "-CRLfile", join(work, "crl-after.pem"), certs.renewed.file]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stdout + bad.stderr, /certificate revoked/);

    // OCSP over POST (openssl) and GET (curl, request in the path).
    const out = await ocsp(srv, root, certs.renewed.file);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: revoked/);
    assert.match(out, /Reason: keyCompromise/);
    assert.match(out, /Revocation Time: /);

    const reqFile = join(work, "get.req");
    assert.equal((await run("openssl", ["ocsp", "-issuer", root, "-cert", certs.renewed.file, "-reqout", reqFile, "-no_nonce"])).code, 0);
    const reqDer = (await runBinary("openssl", ["base64", "-A", "-in", reqFile])).stdout.toString().trim();
    const get = await curl(`${srv.httpBase}/ocsp/${encodeURIComponent(reqDer)}`);
    assert.equal(get.status, 200);
    assert.equal(get.headers["content-type"], "application/ocsp-response");
    const respFile = join(work, "get.resp");
    writeFileSync(respFile, get.body);
    const check = await run("openssl", ["ocsp", "-respin", respFile, "-issuer", root, "-cert", certs.renewed.file, "-CAfile", srv.caPem, "-no_nonce"]);
    assert.match(check.stdout + check.stderr, /Response verify OK/);
    assert.match(check.stdout, /: revoked[\s\S]*Reason: keyCompromise/);
  });

  test("a revocation that reaches the store without a CRL (another writer) is published by the server's timer", async () => {
    const before = await fetchCrl(`${srv.httpBase}/crl/1.crl`, join(work, "crl-w1.pem"));
    assert.doesNotMatch(before.text, new RegExp(certs.other.serial.toUpperCase()));
    const sql = `UPDATE certificates SET status = 'revoked', revoked_at = ${Date.now()}, revocation_reason = 'affiliationChanged' WHERE serial = '${certs.other.serial}';`;
    const r = await run("sqlite3", [join(inst.dir, "estca.db"), sql]);
    assert.equal(r.code, 0, r.stderr);
    let after = before;
    for (let i = 0; i < 60 && !after.text.includes(certs.other.serial.toUpperCase()); i++) {
      await new Promise((res) => setTimeout(res, 300));
      after = await fetchCrl(`${srv.httpBase}/crl/1.crl`, join(work, "crl-w2.pem"));
    }
    assert.match(after.text, new RegExp(`Serial Number: ${certs.other.serial.toUpperCase()}[\\s\\S]*?Affiliation Changed`));
    assert.ok(after.number > before.number);
  });

  test("with ocsp.delegated off the CA key signs the answers; a short crl.validityHours republishes on the timer", async () => {
    await srv.stop();
    editConfig(inst.dir, (c) => {
      c.ocsp = { ...(c.ocsp ?? {}), delegated: false };
      c.crl = { validityHours: 0.004, refreshBeforeHours: 0.002 };
      c.server = { ...(c.server ?? {}), publicHttpUrl: "http://pki.example.test:8080/" };
    });
    srv = await startServer(inst.dir, { env: POLL });
    const out = await ocsp(srv, root, certs.good.file, ["-resp_text"]);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: good/);
    assert.doesNotMatch(out, /OCSP No Check/, "no responder certificate in the answer");

    // 14.4 s of validity, republished 7.2 s before nextUpdate: a new number within seconds, with no revocation.
    const first = await fetchCrl(`${srv.httpBase}/crl/1.crl`, join(work, "crl-t1.pem"));
    assert.ok(Math.abs(first.nextUpdate.getTime() - first.lastUpdate.getTime() - 14_400) <= 1000, first.text);
    let later = first;
    for (let i = 0; i < 60 && later.number === first.number; i++) {
      await new Promise((r) => setTimeout(r, 500));
      later = await fetchCrl(`${srv.httpBase}/crl/1.crl`, join(work, "crl-t2.pem"));
    }
    assert.ok(later.number > first.number, "the timer republished the CRL before nextUpdate");
    assert.match(later.text, new RegExp(`Serial Number: ${certs.renewed.serial.toUpperCase()}`), "still lists the revoked certificate");

    // estca crl publishes now, from another process, and saves the DER.
    const cliCrl = join(work, "cli.crl");
    const crl = await estca(["crl", "--out", cliCrl, "--data", inst.dir]);
    assert.equal(crl.code, 0, crl.stderr);
    const n = Number(/generation 1: CRL number (\d+), next update /.exec(crl.stdout)?.[1]);
    assert.ok(n > later.number, crl.stdout);
    const saved = await run("openssl", ["crl", "-inform", "DER", "-in", cliCrl, "-noout", "-crlnumber"]);
    assert.equal(parseInt(/crlNumber=0x([0-9A-F]+)/i.exec(saved.stdout)?.[1] ?? "", 16), n, saved.stdout + saved.stderr);

    // Behind a proxy: server.publicHttpUrl is the base of the URLs written into certificates.
    const csr = await makeCsr(work, "proxied");
    const issued = await estca(["issue", "--data", inst.dir, "--csr", csr.csrFile, "--out", join(work, "proxied.pem")]);
    assert.equal(issued.code, 0, issued.stderr);
    const text = (await run("openssl", ["x509", "-in", join(work, "proxied.pem"), "-noout", "-text"])).stdout;
    assert.match(text, /URI:http:\/\/pki\.example\.test:8080\/crl\/1\.crl/);
    assert.match(text, /OCSP - URI:http:\/\/pki\.example\.test:8080\/ocsp/);
  });
});
