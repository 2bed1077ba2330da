// Issue 4: CMP-style root rollover (RFC 4210 4.4) served in /cacerts, end to end with curl and openssl,
// including processes killed (SIGKILL) in the middle of a rollover and the recovery that follows.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type InitResult, type Server, cleanup, curl, estca, initData, makeCsr, run, runBinary, startServer, tempDir } from "./helpers/harness.ts";
import { saveCert } from "./helpers/est.ts";
import { inInstance as script } from "./helpers/lifecycle.ts";

const POLL = { ESTCA_LIFECYCLE_POLL_MS: "300" };

/** The certificates of /cacerts, as openssl pkcs7 -print_certs lists them. */
async function cacerts(srv: Server, cacert = srv.caPem): Promise<X509Certificate[]> {
  const r = await curl(`${srv.estBase}cacerts`, { cacert });
  assert.equal(r.status, 200, r.text + r.curlStderr);
  const der = Buffer.from(r.text, "base64");
  const p = await runBinary("openssl", ["pkcs7", "-inform", "DER", "-print_certs"], der);
  assert.equal(p.code, 0, p.stderr);
  const pems = p.stdout.toString().match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/g) ?? [];
  return pems.map((pem) => new X509Certificate(pem));
}

function pemsIn(file: string): X509Certificate[] {
  return (readFileSync(file, "utf8").match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/g) ?? []).map((p) => new X509Certificate(p));
}

async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function statusJson(dir: string): Promise<Record<string, any>> {
  const r = await estca(["status", "--json", "--data", dir]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function handshake(port: number, caFile: string): Promise<string> {
  const r = await run("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-CAfile", caFile, "-verify_hostname", "localhost", "-verify_return_error", "-brief"], { input: "" });
  return r.stdout + r.stderr;
}

describe("root rollover with a running server", () => {
  let inst: InitResult;
  let srv: Server;
  const work = tempDir();
  const oldRoot = join(work, "old-root.pem");
  const newRoot = join(work, "new-root.pem");
  const oldWithNewFile = join(work, "oldwithnew.pem");
  const newWithOldFile = join(work, "newwithold.pem");
  let oldCert: X509Certificate;
  const certs: Record<string, { file: string; serial: string }> = {};

  async function enroll(name: string, cacert: string) {
    const csr = await makeCsr(work, name, { sans: [`DNS:${name}.example`] });
    const r = await curl(`${srv.estBase}simpleenroll`, { cacert, user: `est:${inst.estPassword}`, contentType: "application/pkcs10", body: csr.csrB64 });
    assert.equal(r.status, 200, r.text + r.curlStderr);
    const file = join(work, `${name}.pem`);
    certs[name] = { file, serial: (await saveCert(r, file)).serial };
  }

  before(async () => {
    inst = await initData();
    srv = await startServer(inst.dir, { env: POLL });
    copyFileSync(srv.caPem, oldRoot);
    oldCert = pemsIn(oldRoot)[0];
    await enroll("pre", srv.caPem);
  });
  after(async () => {
    await srv?.stop();
    cleanup(work);
    cleanup(join(inst.dir, ".."));
  });

  test("before: /cacerts holds exactly the root", async () => {
    const got = await cacerts(srv);
    assert.equal(got.length, 1);
    assert.ok(got[0].raw.equals(oldCert.raw));
  });

  test("estca rollover (in another process) makes a non-extractable key and the three certificates; the server follows", async () => {
    const bad = await estca(["rollover", "--overlap", "-1", "--data", inst.dir]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--overlap <days>' argument '-1' is invalid\. give a positive number of days/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /);

    const startedAt = Date.now();
    const r = await estca(["rollover", "--key-type", "ec-p384", "--overlap", "400", "--data", inst.dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /rolled over to generation 2: key estca-root-2 \(ec-p384\)/);
    assert.match(r.stdout, /NewWithNew\s+serial [0-9a-f]+/);
    assert.match(r.stdout, /OldWithNew\s+serial [0-9a-f]+/);
    assert.match(r.stdout, /NewWithOld\s+serial [0-9a-f]+/);

    const got = await waitFor("the server to serve the rollover certificates", async () => {
      const c = await cacerts(srv, oldRoot);
      return c.length === 3 ? c : null;
    });
    // Exactly: NewWithNew, OldWithNew (new key, signed by the old), NewWithOld (old key, signed by the new).
    const [nwn, own, nwo] = got;
    const newKey = nwn.publicKey;
    assert.ok(nwn.verify(newKey), "NewWithNew is self-signed by the new key");
    assert.ok(!newKey.equals(oldCert.publicKey), "a new key");
    assert.ok(own.publicKey.equals(newKey) && own.verify(oldCert.publicKey), "OldWithNew: new public key signed by the old key");
    assert.ok(nwo.publicKey.equals(oldCert.publicKey) && nwo.verify(newKey), "NewWithOld: old public key signed by the new key");
    // --overlap 400: the links end 400 days from now, well before the old root (10 years).
    for (const link of [own, nwo]) {
      const end = new Date(link.validTo).getTime();
      assert.ok(Math.abs(end - (startedAt + 400 * 86400_000)) < 120_000, `link ends ${link.validTo}`);
      assert.ok(end < new Date(oldCert.validTo).getTime());
    }
    writeFileSync(newRoot, nwn.toString());
    writeFileSync(oldWithNewFile, own.toString());
    writeFileSync(newWithOldFile, nwo.toString());
    const ec = await run("openssl", ["x509", "-in", newRoot, "-noout", "-text"]);
    assert.match(ec.stdout, /ASN1 OID: secp384r1/);

    // Every CA certificate is in the store with its role and status; the journal is gone.
    const st = await statusJson(inst.dir);
    assert.equal(st.ca.generation, 2);
    assert.equal(st.rollover, "none");
    const roles = st.caCertificates.filter((c: any) => c.role !== "ocsp").map((c: any) => `${c.generation}:${c.role}:${c.status}:${c.serial}`);
    assert.deepEqual(roles, [
      `1:root:retired:${oldCert.serialNumber.toLowerCase()}`,
      `2:root:active:${nwn.serialNumber.toLowerCase()}`,
      `2:oldWithNew:active:${own.serialNumber.toLowerCase()}`,
      `2:newWithOld:active:${nwo.serialNumber.toLowerCase()}`,
    ]);
    const text = await estca(["status", "--data", inst.dir]);
    assert.match(text.stdout, /2\s+oldWithNew\s+active/);

    // The new key is in the token, sensitive and never extractable.
    const p = await script(inst.dir, `return i.km.protection(i.ca.issuer.key.ref);`);
    assert.deepEqual(p, { sensitive: true, extractable: false, alwaysSensitive: true, neverExtractable: true });

    // ca.pem: both roots, newest first.
    const anchors = pemsIn(srv.caPem);
    assert.equal(anchors.length, 2);
    assert.ok(anchors[0].raw.equals(nwn.raw) && anchors[1].raw.equals(oldCert.raw));
  });

  test("a client that trusts only the old root still connects (leaf + OldWithNew) and enrolls under the new key", async () => {
    const old = await handshake(srv.port, oldRoot);
    assert.match(old, /Verification: OK/, old);
    const nu = await handshake(srv.port, newRoot);
    assert.match(nu, /Verification: OK/, nu);
    // The old-root-only client learns the new root from /cacerts over that connection.
    const got = await cacerts(srv, oldRoot);
    assert.equal(got.length, 3);
    await enroll("post", oldRoot);
    const text = (await run("openssl", ["x509", "-in", certs.post.file, "-noout", "-text"])).stdout;
    assert.match(text, /URI:http:\/\/[^/]+\/crl\/2\.crl/);
    assert.ok(new X509Certificate(readFileSync(certs.post.file)).verify(pemsIn(newRoot)[0].publicKey), "issued under the new key");
  });

  test("openssl verify: old-root-only via OldWithNew, new-root-only via NewWithOld", async () => {
    const a = await run("openssl", ["verify", "-CAfile", oldRoot, "-untrusted", oldWithNewFile, certs.post.file]);
    assert.equal(a.code, 0, a.stdout + a.stderr);
    assert.match(a.stdout, /post\.pem: OK/);
    const b = await run("openssl", ["verify", "-CAfile", newRoot, "-untrusted", newWithOldFile, certs.pre.file]);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    assert.match(b.stdout, /pre\.pem: OK/);
    // Without the link neither verifies: the links are what does it.
    assert.notEqual((await run("openssl", ["verify", "-CAfile", oldRoot, certs.post.file])).code, 0);
    assert.notEqual((await run("openssl", ["verify", "-CAfile", newRoot, certs.pre.file])).code, 0);
  });

  test("OCSP and CRL answer for both generations, each signed by or for its own key", async () => {
    const ocsp = async (issuer: string, cert: string, caFile: string) => {
      const r = await run("openssl", ["ocsp", "-issuer", issuer, "-cert", cert, "-url", `${srv.httpBase}/ocsp`, "-CAfile", caFile]);
      return r.stdout + r.stderr;
    };
    // -CAfile with one root only: the responder of each generation chains to that generation's root.
    let out = await ocsp(oldRoot, certs.pre.file, oldRoot);
    assert.match(out, /Response verify OK/);
    assert.match(out, /pre\.pem: good/);
    out = await ocsp(newRoot, certs.post.file, newRoot);
    assert.match(out, /Response verify OK/);
    assert.match(out, /post\.pem: good/);

    for (const [name, reason] of [["pre", "superseded"], ["post", "cessationOfOperation"]]) {
      const r = await estca(["revoke", certs[name].serial, "--reason", reason, "--data", inst.dir]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`published CRL number \\d+ of generation ${name === "pre" ? 1 : 2}`));
    }
    out = await ocsp(oldRoot, certs.pre.file, oldRoot);
    assert.match(out, /Response verify OK/);
    assert.match(out, /pre\.pem: revoked[\s\S]*Reason: superseded/);
    out = await ocsp(newRoot, certs.post.file, newRoot);
    assert.match(out, /Response verify OK/);
    assert.match(out, /post\.pem: revoked[\s\S]*Reason: cessationOfOperation/);

    const crl = async (gen: number) => {
      const r = await curl(`${srv.httpBase}/crl/${gen}.crl`);
      assert.equal(r.status, 200);
      const file = join(work, `crl${gen}.pem`);
      const p = await runBinary("openssl", ["crl", "-inform", "DER", "-out", file], r.body);
      assert.equal(p.code, 0, p.stderr);
      return file;
    };
    const crl1 = await crl(1);
    const crl2 = await crl(2);
    const v1 = await run("openssl", ["verify", "-crl_check", "-CAfile", oldRoot, "-CRLfile", crl1, certs.pre.file]);
    assert.match(v1.stdout + v1.stderr, /certificate revoked/);
    const v2 = await run("openssl", ["verify", "-crl_check", "-CAfile", newRoot, "-CRLfile", crl2, certs.post.file]);
    assert.match(v2.stdout + v2.stderr, /certificate revoked/);
    await enroll("post2", srv.caPem);
    const v3 = await run("openssl", ["verify", "-crl_check", "-CAfile", newRoot, "-CRLfile", crl2, certs.post2.file]);
    assert.equal(v3.code, 0, v3.stdout + v3.stderr);
    // The old key's CRL still signs for what it issued, and verifies against the old root alone.
    const sig = await run("openssl", ["crl", "-in", crl1, "-CAfile", oldRoot, "-noout"]);
    assert.match(sig.stdout + sig.stderr, /verify OK/);
  });

  test("once the overlap ends only the new root is served; once the old root expires ca.pem drops it", async () => {
    const linksEnd = new Date(pemsIn(oldWithNewFile)[0].validTo).getTime() + 1000;
    const rootEnd = new Date(oldCert.validTo).getTime() + 1000;
    const q = (t: number) => `{ cacerts: i.ca.cacerts(${t}).length, chain: i.ca.listenerChain(${t}).length, anchors: (i.ca.trustAnchorsPem(${t}).match(/BEGIN CERTIFICATE/g) ?? []).length }`;
    const r = await script(inst.dir, `return { now: ${q(Date.now())}, afterLinks: ${q(linksEnd)}, afterOldRoot: ${q(rootEnd)} };`);
    assert.deepEqual(r, {
      now: { cacerts: 3, chain: 1, anchors: 2 },
      afterLinks: { cacerts: 1, chain: 0, anchors: 2 },
      afterOldRoot: { cacerts: 1, chain: 0, anchors: 1 },
    });
  });
});

describe("a rollover killed in the middle", () => {
  let inst: InitResult;
  let srv: Server | undefined;
  const work = tempDir();

  before(async () => {
    inst = await initData();
  });
  after(async () => {
    await srv?.stop();
    cleanup(work);
    cleanup(join(inst.dir, ".."));
  });

  const crashAt = (point: string) => estca(["rollover", "--data", inst.dir], { env: { ESTCA_TEST_CRASH_AT: point } });

  test("killed after the key was made, before the commit: the next start undoes it", async () => {
    const r = await crashAt("keygen");
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout, /rolled over/);
    const st = await statusJson(inst.dir);
    assert.equal(st.ca.generation, 1, "the store is still the old state");
    assert.equal(JSON.parse(st.rollover).state, "started");
    assert.equal(await script(inst.dir, `return i.km.findKey("estca-root-2") !== null;`), true, "the new key was made");

    srv = await startServer(inst.dir, { env: POLL });
    assert.match(srv.output(), /an interrupted CA rollover was undone/);
    assert.equal((await cacerts(srv)).length, 1);
    await srv.stop();
    srv = undefined;
    assert.equal(await script(inst.dir, `return i.km.findKey("estca-root-2") !== null;`), false, "the orphan key is deleted");
    assert.equal((await statusJson(inst.dir)).rollover, "none");
  });

  test("killed after signing, before the commit: estca rollover undoes it and says so", async () => {
    assert.notEqual((await crashAt("signed")).code, 0);
    const r = await estca(["rollover", "--data", inst.dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /had not committed; it was undone/);
    assert.equal((await statusJson(inst.dir)).ca.generation, 1);
  });

  test("killed right after the commit: the next start finishes it (listener certificate, ca.pem, CRL)", async () => {
    const oldRoot = join(work, "old.pem");
    copyFileSync(join(inst.dir, "ca.pem"), oldRoot);
    assert.notEqual((await crashAt("committed")).code, 0);
    const st = await statusJson(inst.dir);
    assert.equal(st.ca.generation, 2, "the store is the new state");
    assert.equal(JSON.parse(st.rollover).state, "committed");
    assert.equal(pemsIn(join(inst.dir, "ca.pem")).length, 1, "ca.pem not yet rewritten");

    srv = await startServer(inst.dir, { env: POLL });
    assert.match(srv.output(), /an interrupted CA rollover was finished/);
    assert.equal((await statusJson(inst.dir)).rollover, "none");
    const got = await cacerts(srv, oldRoot);
    assert.equal(got.length, 3);
    const newRoot = join(work, "new.pem");
    writeFileSync(newRoot, got[0].toString());
    assert.match(await handshake(srv.port, oldRoot), /Verification: OK/);
    assert.match(await handshake(srv.port, newRoot), /Verification: OK/);
    assert.equal(pemsIn(join(inst.dir, "ca.pem")).length, 2);
    assert.equal((await curl(`${srv.httpBase}/crl/2.crl`)).status, 200);
  });

  test("killed while rewriting the files, with the server running: the server finishes it by itself", async () => {
    assert.notEqual((await crashAt("listener")).code, 0);
    await waitFor("the server to finish the rollover", async () => (await statusJson(inst.dir)).rollover === "none");
    const got = await waitFor("generation 3 in /cacerts", async () => {
      const c = await cacerts(srv!);
      return c.length === 3 && !c[0].raw.equals(pemsIn(join(work, "new.pem"))[0].raw) ? c : null;
    });
    const gen3 = join(work, "gen3.pem");
    writeFileSync(gen3, got[0].toString());
    assert.equal((await statusJson(inst.dir)).ca.generation, 3);
    // Generation 2 is now the old root: a client that knows only it still gets through.
    assert.match(await handshake(srv!.port, join(work, "new.pem")), /Verification: OK/);
    assert.match(await handshake(srv!.port, gen3), /Verification: OK/);
    assert.equal(pemsIn(join(inst.dir, "ca.pem")).length, 3, "three roots in date");
  });
});
