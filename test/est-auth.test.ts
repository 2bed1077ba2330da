// Issue 3: who may enroll. HTTP Basic, a TLS client certificate of this CA, an IDevID under an
// external trust anchor; 401/403 with recorded reasons; simplereenroll (renew, rekey,
// ChangeSubjectName) with curl and strongSwan's pki.
import "reflect-metadata";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as asn1js from "asn1js";
import * as x509 from "@peculiar/x509";
import { cleanup, curl, estca, makeCsr, run, tempDir } from "./helpers/harness.ts";
import { type EstFixture, estFixture, pki, requestLog, saveCert, showCert, x509Csr } from "./helpers/est.ts";

const CHANGE_SUBJECT_NAME = "1.3.6.1.5.5.7.7.36";

async function openssl(args: string[]): Promise<void> {
  const r = await run("openssl", args);
  if (r.code !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
}

/** A device maker's IDevID CA and one device certificate under it, made with openssl. */
async function makeIdevid(dir: string): Promise<{ caPem: string; devCert: string; devKey: string; strangerCert: string; strangerKey: string }> {
  const p = (n: string) => join(dir, n);
  await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p("idev-ca.key"), "-out", p("idev-ca.pem"), "-subj", "/O=Maker/CN=Maker IDevID CA", "-days", "3650", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  writeFileSync(p("dev.ext"), "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n");
  await openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p("dev.key"), "-subj", "/serialNumber=SN-0042/CN=device-0042", "-out", p("dev.csr")]);
  await openssl(["x509", "-req", "-in", p("dev.csr"), "-CA", p("idev-ca.pem"), "-CAkey", p("idev-ca.key"), "-CAcreateserial", "-out", p("dev.pem"), "-days", "3650", "-extfile", p("dev.ext")]);
  // A self-signed certificate nobody trusts.
  await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p("stranger.key"), "-out", p("stranger.pem"), "-subj", "/CN=stranger", "-days", "30"]);
  return { caPem: p("idev-ca.pem"), devCert: p("dev.pem"), devKey: p("dev.key"), strangerCert: p("stranger.pem"), strangerKey: p("stranger.key") };
}

/** ChangeSubjectName (RFC 6402 2.6): SEQUENCE { subject Name OPTIONAL, subjectAlt GeneralNames OPTIONAL }. */
function changeSubjectNameAttr(newSubject: string): x509.Attribute {
  const name = new x509.Name(newSubject);
  const value = new asn1js.Sequence({ value: [asn1js.fromBER(name.toArrayBuffer()).result] });
  return new x509.Attribute(CHANGE_SUBJECT_NAME, [value.toBER()]);
}

describe("EST authentication, authorization and reenroll", () => {
  let f: EstFixture;
  const work = tempDir();
  let idev: Awaited<ReturnType<typeof makeIdevid>>;
  /** A certificate of this CA with its key, enrolled with Basic (default profile, clientAuth). */
  let own: { cert: string; key: string; serial: string };

  before(async () => {
    idev = await makeIdevid(work);
    f = await estFixture((c, dir) => {
      copyFileSync(idev.caPem, join(dir, "idevid-ca.pem"));
      c.profiles.iot = { description: "LDevIDs for devices with a maker's IDevID", auth: ["cert"], externalTrustAnchors: ["idevid-ca.pem"] };
      c.profiles.certonly = { auth: ["cert"] };
      c.profiles.rename = { allowChangeSubjectName: true };
    });
    const add = await estca(["user", "add", "ops", "--password-stdin", "--label", "rename", "--label", "default", "--data", f.inst.dir], { input: "ops-pass-123456\n" });
    assert.equal(add.code, 0, add.stderr);
    const csr = await makeCsr(work, "own", { subject: "/CN=own-device/O=Example", sans: ["DNS:own.example"] });
    const r = await curl(`${f.srv.estBase}simpleenroll`, { cacert: f.srv.caPem, user: f.userpass, contentType: "application/pkcs10", body: csr.csrB64 });
    assert.equal(r.status, 200, r.text);
    const file = join(work, "own.pem");
    own = { cert: file, key: csr.keyFile, serial: (await saveCert(r, file)).serial };
  });
  after(async () => {
    await f?.stop();
    cleanup(work);
  });

  for (const tls of ["1.2", "1.3"] as const) {
    test(`a TLS client certificate of this CA enrolls without a password (TLS ${tls})`, async () => {
      const csr = await makeCsr(work, `by-cert-${tls}`, { sans: ["DNS:by-cert.example"] });
      const r = await curl(`${f.srv.estBase}simpleenroll`, { cacert: f.srv.caPem, tls, cert: own.cert, key: own.key, contentType: "application/pkcs10", body: csr.csrB64 });
      assert.equal(r.status, 200, r.text);
      const { serial } = await saveCert(r, join(work, `by-cert-${tls}.pem`));
      const log = (await requestLog(f.inst.dir)).find((e) => e.serial === serial)!;
      assert.equal(log.authMethod, "cert");
      assert.equal(log.clientIdentity, "cert:CN=own-device, O=Example");
      assert.equal(log.tlsVersion, `TLSv${tls}`);
      assert.equal(log.label, null);
    });

    test(`a device with an IDevID under the profile's external anchor gets an LDevID (TLS ${tls})`, async () => {
      const csr = await makeCsr(work, `ldev-${tls}`, { subject: "/CN=device-0042" });
      const r = await curl(`${f.srv.estBase}iot/simpleenroll`, { cacert: f.srv.caPem, tls, cert: idev.devCert, key: idev.devKey, contentType: "application/pkcs10", body: csr.csrB64 });
      assert.equal(r.status, 200, r.text);
      const out = join(work, `ldev-${tls}.pem`);
      const { serial } = await saveCert(r, out);
      const v = await run("openssl", ["verify", "-CAfile", f.srv.caPem, out]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
      const log = (await requestLog(f.inst.dir)).find((e) => e.serial === serial)!;
      assert.equal(log.authMethod, "external-cert");
      assert.match(log.clientIdentity!, /^cert:.*CN=device-0042/);
    });
  }

  test("401 and 403 with the reason in the answer and in the request log", async () => {
    const csr = await makeCsr(work, "denied");
    const post = (path: string, o: Partial<Parameters<typeof curl>[1]> = {}) =>
      curl(`${f.srv.estBase}${path}`, { cacert: f.srv.caPem, contentType: "application/pkcs10", body: csr.csrB64, ...o });
    const cases: [string, ReturnType<typeof post>, number, RegExp][] = [
      ["no credentials", post("simpleenroll"), 401, /no credentials: profile "default" needs HTTP Basic credentials or a client certificate/],
      ["unknown user", post("simpleenroll", { user: "mallory:x" }), 401, /unknown user "mallory"/],
      ["untrusted certificate", post("simpleenroll", { cert: idev.strangerCert, key: idev.strangerKey }), 401, /client certificate \(CN=stranger\) was not issued by this CA or by a trust anchor of profile "default"/],
      ["IDevID on a profile that does not trust its maker", post("simpleenroll", { cert: idev.devCert, key: idev.devKey }), 403, /is from an external CA trusted by profile "iot", not by "default"/],
      ["user without the label", post("iot/simpleenroll", { user: f.userpass }), 403, /profile "iot" does not accept HTTP Basic authentication/],
      ["user not allowed this profile", post("rename/simpleenroll", { user: f.userpass }), 403, /user "est" may use profile "default", not "rename"/],
      ["cert-only profile with no certificate", post("certonly/simpleenroll"), 401, /profile "certonly" needs a TLS client certificate/],
      ["certificate of this CA on another profile", post("certonly/simpleenroll", { cert: own.cert, key: own.key }), 403, /client certificate [0-9a-f]+ \(CN=own-device, O=Example\) was issued under profile "default" and may enroll only there, not in "certonly"/],
    ];
    for (const [name, p, status, reason] of cases) {
      const r = await p;
      assert.equal(r.status, status, `${name}: ${r.text}`);
      assert.match(r.text, reason, name);
      if (status === 401) assert.equal(r.headers["www-authenticate"], 'Basic realm="estca"', name);
    }
    const log = await requestLog(f.inst.dir, 10);
    for (const [, , status, reason] of cases) assert.ok(log.some((e) => e.status === status && reason.test(e.reason ?? "")), `logged: ${reason}`);
    assert.ok(log.some((e) => e.status === 401 && e.clientIdentity === "user:mallory"), "the claimed identity is logged");
    assert.ok(log.some((e) => e.status === 401 && e.clientIdentity === "cert:(unverified) CN=stranger"), "a refused certificate is named");
  });

  test("simplereenroll: renew with the same key, then rekey; the old certificate is superseded, not revoked", async () => {
    // Renew: the same key and subject, authenticated by the certificate being renewed.
    const renewCsr = await makeCsr(work, "renew", { keyFile: own.key, subject: "/CN=own-device/O=Example", sans: ["DNS:own.example"] });
    const r1 = await curl(`${f.srv.estBase}simplereenroll`, { cacert: f.srv.caPem, tls: "1.2", cert: own.cert, key: own.key, contentType: "application/pkcs10", body: renewCsr.csrB64 });
    assert.equal(r1.status, 200, r1.text);
    const renewed = join(work, "renewed.pem");
    const s1 = (await saveCert(r1, renewed)).serial;
    const old = await showCert(f.inst.dir, own.serial);
    assert.equal(old.status, "superseded");
    assert.equal(old.supersededBy, s1);
    assert.equal(old.revokedAt ?? null, null);
    const pub = async (f: string, x = "x509") => (await run("openssl", [x, "-in", f, "-noout", "-pubkey"])).stdout;
    assert.equal(await pub(renewed), await pub(own.cert), "renew keeps the key");

    // The superseded certificate no longer authenticates.
    const again = await curl(`${f.srv.estBase}simplereenroll`, { cacert: f.srv.caPem, cert: own.cert, key: own.key, contentType: "application/pkcs10", body: renewCsr.csrB64 });
    assert.equal(again.status, 403);
    assert.match(again.text, new RegExp(`was superseded by ${s1}`));

    // Rekey: a new key, same subject, TLS 1.3.
    const rekeyCsr = await makeCsr(work, "rekey", { subject: "/CN=own-device/O=Example", sans: ["DNS:own.example"] });
    const r2 = await curl(`${f.srv.estBase}simplereenroll`, { cacert: f.srv.caPem, tls: "1.3", cert: renewed, key: own.key, contentType: "application/pkcs10", body: rekeyCsr.csrB64 });
    assert.equal(r2.status, 200, r2.text);
    const rekeyed = join(work, "rekeyed.pem");
    const s2 = (await saveCert(r2, rekeyed)).serial;
    assert.notEqual(await pub(rekeyed), await pub(renewed));
    assert.equal((await showCert(f.inst.dir, s1)).status, "superseded");
    assert.equal((await showCert(f.inst.dir, s1)).supersededBy, s2);

    // Subject or SAN changes without ChangeSubjectName are refused.
    const other = await makeCsr(work, "other-subject", { subject: "/CN=someone-else/O=Example", sans: ["DNS:own.example"] });
    const r3 = await curl(`${f.srv.estBase}simplereenroll`, { cacert: f.srv.caPem, cert: rekeyed, key: rekeyCsr.keyFile, contentType: "application/pkcs10", body: other.csrB64 });
    assert.equal(r3.status, 400);
    assert.match(r3.text, /reenroll CSR subject "CN=someone-else, O=Example" differs from the certificate being renewed \("CN=own-device, O=Example"\)/);
    const otherSan = await makeCsr(work, "other-san", { subject: "/CN=own-device/O=Example", sans: ["DNS:evil.example"] });
    const r4 = await curl(`${f.srv.estBase}simplereenroll`, { cacert: f.srv.caPem, cert: rekeyed, key: rekeyCsr.keyFile, contentType: "application/pkcs10", body: otherSan.csrB64 });
    assert.equal(r4.status, 400);
    assert.match(r4.text, /subjectAltName \(dns:evil\.example\) differs from the certificate being renewed \(dns:own\.example\)/);

    // HTTP Basic alone cannot reenroll.
    const r5 = await curl(`${f.srv.estBase}simplereenroll`, { cacert: f.srv.caPem, user: f.userpass, contentType: "application/pkcs10", body: rekeyCsr.csrB64 });
    assert.equal(r5.status, 403);
    assert.match(r5.text, /simplereenroll needs the TLS client certificate being renewed/);

    // A revoked certificate is refused.
    const rev = await estca(["revoke", s2, "--reason", "keyCompromise", "--data", f.inst.dir]);
    assert.equal(rev.code, 0, rev.stderr);
    const r6 = await curl(`${f.srv.estBase}simplereenroll`, { cacert: f.srv.caPem, cert: rekeyed, key: rekeyCsr.keyFile, contentType: "application/pkcs10", body: rekeyCsr.csrB64 });
    assert.equal(r6.status, 403);
    assert.match(r6.text, /is revoked \(keyCompromise\)/);
  });

  test("simplereenroll with ChangeSubjectName: refused unless the profile allows it", async () => {
    // A certificate on the "rename" profile, then a renewal that renames it.
    const first = await makeCsr(work, "to-rename", { subject: "/CN=old-name" });
    const r0 = await curl(`${f.srv.estBase}rename/simpleenroll`, { cacert: f.srv.caPem, user: "ops:ops-pass-123456", contentType: "application/pkcs10", body: first.csrB64 });
    assert.equal(r0.status, 200, r0.text);
    const certFile = join(work, "to-rename.pem");
    const { serial } = await saveCert(r0, certFile);
    const csr = await x509Csr({ subject: "CN=new-name", attributes: [changeSubjectNameAttr("CN=new-name")] });
    const keyFile = join(work, "renamed.key");
    writeFileSync(keyFile, csr.keyPem);

    // The same request from a certificate of the default profile, which does not allow renaming.
    const plain = await makeCsr(work, "to-rename-default", { subject: "/CN=old-name" });
    const r1 = await curl(`${f.srv.estBase}simpleenroll`, { cacert: f.srv.caPem, user: f.userpass, contentType: "application/pkcs10", body: plain.csrB64 });
    assert.equal(r1.status, 200, r1.text);
    const plainCert = join(work, "to-rename-default.pem");
    await saveCert(r1, plainCert);
    const refused = await curl(`${f.srv.estBase}simplereenroll`, { cacert: f.srv.caPem, cert: plainCert, key: plain.keyFile, contentType: "application/pkcs10", body: csr.b64 });
    assert.equal(refused.status, 403, refused.text);
    assert.match(refused.text, /ChangeSubjectName but profile "default" does not allow subject changes/);

    const ok = await curl(`${f.srv.estBase}rename/simplereenroll`, { cacert: f.srv.caPem, cert: certFile, key: first.keyFile, contentType: "application/pkcs10", body: csr.b64 });
    assert.equal(ok.status, 200, ok.text);
    const out = join(work, "renamed.pem");
    const s = await saveCert(ok, out);
    assert.match((await run("openssl", ["x509", "-in", out, "-noout", "-subject"])).stdout, /CN ?= ?new-name/);
    const old = await showCert(f.inst.dir, serial);
    assert.equal(old.status, "superseded");
    assert.equal(old.supersededBy, s.serial);
  });

  test("strongSwan pki --est renews with --cert/--key (simplereenroll over its own TLS stack)", async () => {
    const csr = await makeCsr(work, "sw-first", { key: "rsa-2048", sans: ["DNS:sw-renew.example"] });
    const r = await curl(`${f.srv.estBase}simpleenroll`, { cacert: f.srv.caPem, user: f.userpass, contentType: "application/pkcs10", body: csr.csrB64 });
    assert.equal(r.status, 200);
    const certFile = join(work, "sw-first.pem");
    const { serial } = await saveCert(r, certFile);
    const renew = await makeCsr(work, "sw-renew", { key: "rsa-2048", subject: "/CN=sw-first", sans: ["DNS:sw-renew.example"] });
    const e = await pki(["--est", "--url", f.srv.origin, "--cacert", f.srv.caPem, "--in", renew.csrFile, "--cert", certFile, "--key", csr.keyFile, "--outform", "pem"]);
    assert.equal(e.code, 0, e.stdout + e.stderr);
    assert.match(e.stdout, /BEGIN CERTIFICATE/);
    const log = (await requestLog(f.inst.dir, 3))[0];
    assert.equal(log.operation, "simplereenroll");
    assert.equal(log.status, 200, log.reason ?? "");
    assert.equal(log.authMethod, "cert");
    assert.equal((await showCert(f.inst.dir, serial)).status, "superseded");
  });
});

