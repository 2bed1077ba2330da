// Issue 6: certificates and CRLs are assembled from DER (src/pki/certificate.ts, src/pki/crl.ts)
// and CSRs are checked in worker threads (src/pki/csr-pool.ts). What comes out must still be what
// openssl reads and verifies, for every CA key type, and a thread that dies must lose nothing.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CsrThreadPool } from "../src/pki/csr-pool.ts";
import { parseCsr } from "../src/pki/csr.ts";
import { cleanup, estca, initData, makeCsr, run, tempDir } from "./helpers/harness.ts";
import { editConfig } from "./helpers/est.ts";

const text = async (file: string, kind: "x509" | "crl") => {
  const r = await run("openssl", [kind, "-in", file, ...(kind === "crl" ? ["-inform", "DER"] : []), "-noout", "-text"]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
};

describe("certificates and CRLs assembled from DER", () => {
  for (const caKey of ["ec-p256", "ec-p384", "rsa-2048"] as const) {
    test(`a ${caKey} CA: openssl verifies what it issues and its CRL, with every field in place`, async () => {
      const inst = await initData(["--key-type", caKey]);
      // A device named only by its SAN is legitimate (RFC 5280 4.2.1.6); the default profile wants a CN.
      editConfig(inst.dir, (c) => (c.profiles.default.subject = { ...c.profiles.default.subject, requireCommonName: false }));
      const dir = tempDir();
      try {
        const ca = join(inst.dir, "ca.pem");
        const issued: { serial: string; file: string }[] = [];
        const cases = [
          { name: "ec", key: "ec-p256" as const, subject: "/CN=enc-ec/O=Example Org/C=DE", sans: ["DNS:enc-ec.example,IP:192.0.2.7,IP:2001:db8::7,email:ops@example.org,URI:https://enc.example/d"] },
          { name: "rsa", key: "rsa-2048" as const, subject: "/CN=enc-rsa", sans: [] },
          { name: "nosubject", key: "ec-p384" as const, subject: "/", sans: ["DNS:only-san.example"] },
        ];
        for (const c of cases) {
          const csr = await makeCsr(dir, c.name, { key: c.key, subject: c.subject, sans: c.sans });
          const out = join(dir, `${c.name}.pem`);
          const r = await estca(["issue", "--data", inst.dir, "--csr", csr.csrFile, "--out", out]);
          assert.equal(r.code, 0, r.stderr);
          const v = await run("openssl", ["verify", "-CAfile", ca, out]);
          assert.equal(v.code, 0, `${c.name}: ${v.stdout}${v.stderr}`);
          const t = await text(out, "x509");
          const serial = (await run("openssl", ["x509", "-in", out, "-noout", "-serial"])).stdout.trim().replace(/^serial=/, "").toLowerCase();
          issued.push({ serial, file: out });
          assert.match(t, /Version: 3 \(0x2\)/);
          assert.match(t, new RegExp(`Signature Algorithm: ${caKey.startsWith("rsa") ? "sha256WithRSAEncryption" : caKey === "ec-p384" ? "ecdsa-with-SHA384" : "ecdsa-with-SHA256"}`));
          assert.match(t, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
          assert.match(t, /X509v3 Subject Key Identifier/);
          assert.match(t, /X509v3 Authority Key Identifier/);
          assert.match(t, /X509v3 CRL Distribution Points/);
          assert.match(t, /OCSP - URI:http/);
          // The subject keeps the request's string types and order.
          const want = (await run("openssl", ["req", "-in", csr.csrFile, "-noout", "-subject", "-nameopt", "RFC2253,show_type"])).stdout.replace(/^subject=/, "").trim();
          const got = (await run("openssl", ["x509", "-in", out, "-noout", "-subject", "-nameopt", "RFC2253,show_type"])).stdout.replace(/^subject=/, "").trim();
          assert.equal(got, want, `${c.name}: subject`);
          if (c.name === "ec") assert.match(t, /DNS:enc-ec\.example, IP Address:192\.0\.2\.7, IP Address:2001:DB8:0:0:0:0:0:7, email:ops@example\.org, URI:https:\/\/enc\.example\/d/);
          if (c.name === "rsa") assert.doesNotMatch(t, /Subject Alternative Name/);
          // RFC 5280 4.2.1.6: an empty subject makes the SAN critical.
          if (c.name === "nosubject") assert.match(t, /X509v3 Subject Alternative Name: critical\s+DNS:only-san\.example/);
        }

        // An empty CRL has no revokedCertificates field; then two revocations, one with a reason.
        const crl0 = join(dir, "crl0.der");
        assert.equal((await estca(["crl", "--data", inst.dir, "--out", crl0])).code, 0);
        assert.match(await text(crl0, "crl"), /No Revoked Certificates/);
        assert.equal((await estca(["revoke", issued[0].serial, "--reason", "keyCompromise", "--data", inst.dir])).code, 0);
        assert.equal((await estca(["revoke", issued[1].serial, "--data", inst.dir])).code, 0);
        const crl = join(dir, "crl.der");
        assert.equal((await estca(["crl", "--data", inst.dir, "--out", crl])).code, 0);
        const ct = await text(crl, "crl");
        assert.match(ct, /Version 2 \(0x1\)/);
        assert.match(ct, /X509v3 CRL Number/);
        assert.match(ct, new RegExp(`Serial Number: ${issued[0].serial.toUpperCase()}[\\s\\S]*?CRL Reason Code:\\s+Key Compromise`));
        assert.match(ct, new RegExp(`Serial Number: ${issued[1].serial.toUpperCase()}`));
        const crlPem = join(dir, "crl.pem");
        assert.equal((await run("openssl", ["crl", "-inform", "DER", "-in", crl, "-out", crlPem])).code, 0);
        const check = async (file: string) => run("openssl", ["verify", "-crl_check", "-CAfile", join(inst.dir, "ca.pem"), "-CRLfile", crlPem, file]);
        assert.match((await check(issued[0].file)).stdout + (await check(issued[0].file)).stderr, /certificate revoked/);
        assert.equal((await check(issued[2].file)).code, 0, "an unrevoked certificate passes the CRL check");
      } finally {
        cleanup(dir);
        cleanup(join(inst.dir, ".."));
      }
    });
  }
});

describe("CSR checks in worker threads", () => {
  test("a thread answers as the main thread does, and a thread that dies loses nothing", async () => {
    const dir = tempDir();
    const pool = new CsrThreadPool(1);
    try {
      const good = await makeCsr(dir, "pool", { sans: ["DNS:pool.example"] });
      const bad = Buffer.from(good.csrDer);
      bad[bad.length - 5] ^= 0x01; // the signature no longer verifies
      // Until the thread is ready the main thread answers; wait for the thread.
      for (let i = 0; i < 100 && !(pool as unknown as { threads: { ready: boolean }[] }).threads[0].ready; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok((pool as unknown as { threads: { ready: boolean }[] }).threads[0].ready, "the thread never became ready");

      const csr = await pool.check(good.csrDer);
      const here = parseCsr(good.csrDer);
      assert.ok(Buffer.isBuffer(csr.spki) && csr.spki.equals(here.spki));
      assert.equal(csr.subject, "CN=pool");
      assert.deepEqual(csr.sans, [{ type: "dns", value: "pool.example" }]);
      assert.equal(csr.publicKey.asymmetricKeyType, "ec");
      await assert.rejects(pool.check(bad), (e: Error & { kind?: string }) => e.name === "EstcaError" && e.kind === "bad_request" && /proof of possession failed/.test(e.message));
      await assert.rejects(pool.check(Buffer.from("not a csr")), (e: Error & { kind?: string }) => e.kind === "bad_request" && /not a PKCS#10/.test(e.message));

      // Kill the thread with requests in flight: every one is still answered, correctly.
      const threads = (pool as unknown as { threads: { worker: { terminate(): Promise<number>; threadId: number } }[] }).threads;
      const before = threads[0].worker.threadId;
      const inflight = Array.from({ length: 20 }, (_, i) => pool.check(i % 2 ? good.csrDer : bad).then(() => "ok", (e: Error) => (/proof of possession/.test(e.message) ? "refused" : e.message)));
      await threads[0].worker.terminate();
      const results = await Promise.all(inflight);
      assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => (i % 2 ? "ok" : "refused")));
      // It is replaced.
      for (let i = 0; i < 100 && threads[0].worker.threadId === before; i++) await new Promise((r) => setTimeout(r, 50));
      assert.notEqual(threads[0].worker.threadId, before, "the dead thread was not replaced");
      assert.equal((await pool.check(good.csrDer)).subject, "CN=pool");
    } finally {
      await pool.close();
      cleanup(dir);
    }
  });
});
