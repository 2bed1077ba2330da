// Issue 3: /serverkeygen (RFC 7030 4.4), plain and encrypted, and /fullcmc (RFC 5272/5273),
// success and failure. Responses are checked with openssl as a separate process.
import "reflect-metadata";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import * as x509 from "@peculiar/x509";
import { cleanup, curl, estca, makeCsr, run, runBinary, tempDir } from "./helpers/harness.ts";
import { type EstFixture, estFixture, requestLog, saveCert, x509Csr } from "./helpers/est.ts";
import { fullCmcRequest } from "./helpers/cmc-client.ts";

const KG = "kg:kg-pass-1234567";
const ASYMMETRIC_DECRYPT_KEY_ID = "1.2.840.113549.1.9.16.2.54";

interface Part {
  headers: string;
  der: Buffer;
}

/** Splits a multipart/mixed body by the boundary its Content-Type names, keeping the raw part headers. */
function parts(r: { headers: Record<string, string>; body: Buffer }): Part[] {
  const m = r.headers["content-type"].match(/^multipart\/mixed; boundary=([A-Za-z0-9'()+_,./:=?-]+)$/);
  assert.ok(m, `Content-Type: ${r.headers["content-type"]}`);
  const text = r.body.toString("latin1");
  assert.ok(text.endsWith(`\r\n--${m[1]}--\r\n`), "closing delimiter");
  const chunks = text.split(`--${m[1]}`).slice(1, -1);
  return chunks.map((c) => {
    const [headers, b64] = c.replace(/^\r\n/, "").split("\r\n\r\n");
    return { headers: headers + "\r\n", der: Buffer.from(b64.replace(/\r\n/g, ""), "base64") };
  });
}

async function publicKeyOf(file: string, kind: "x509" | "pkey", inform = "PEM"): Promise<string> {
  const r = await run("openssl", kind === "x509" ? ["x509", "-in", file, "-noout", "-pubkey"] : ["pkey", "-inform", inform, "-in", file, "-pubout"]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

/** Verifies a CMS SignedData with openssl (signature only) and returns its content and signer. */
async function cmsVerify(der: Buffer, work: string, name: string): Promise<{ content: Buffer; signerPem: string }> {
  const inFile = join(work, `${name}.p7`);
  const outFile = join(work, `${name}.content`);
  const signer = join(work, `${name}.signer.pem`);
  writeFileSync(inFile, der);
  const v = await run("openssl", ["cms", "-verify", "-noverify", "-inform", "DER", "-in", inFile, "-out", outFile, "-signer", signer, "-binary"]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stderr, /Verification successful/);
  return { content: readFileSync(outFile), signerPem: readFileSync(signer, "utf8") };
}

async function asn1(der: Buffer): Promise<string> {
  const r = await runBinary("openssl", ["asn1parse", "-inform", "DER", "-i"], der);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString();
}

describe("serverkeygen and fullcmc", () => {
  let f: EstFixture;
  const work = tempDir();
  /** Client certificates of this CA, EC and RSA, with their keys and SKIs. */
  const clients: Record<"ec" | "rsa", { cert: string; key: string; ski: Buffer }> = {} as never;

  before(async () => {
    f = await estFixture((c) => {
      c.profiles.ecOnly = { keyTypes: ["ec-p256"], serverKeygen: { defaultKeyType: "ec-p256" } };
      c.profiles.nokeygen = { serverKeygen: { enabled: false } };
    });
    const add = await estca(["user", "add", "kg", "--password-stdin", "--label", "*", "--data", f.inst.dir], { input: "kg-pass-1234567\n" });
    assert.equal(add.code, 0, add.stderr);
    for (const kind of ["ec", "rsa"] as const) {
      const csr = await makeCsr(work, `client-${kind}`, { key: kind === "ec" ? "ec-p256" : "rsa-2048" });
      const r = await curl(`${f.srv.estBase}simpleenroll`, { cacert: f.srv.caPem, user: f.userpass, contentType: "application/pkcs10", body: csr.csrB64 });
      assert.equal(r.status, 200, r.text);
      const file = join(work, `client-${kind}.pem`);
      await saveCert(r, file);
      const cert = new x509.X509Certificate(readFileSync(file, "utf8"));
      const ski = Buffer.from(cert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId, "hex");
      clients[kind] = { cert: file, key: csr.keyFile, ski };
    }
  });
  after(async () => {
    await f?.stop();
    cleanup(work);
  });

  for (const [tls, label, key, expect] of [
    ["1.2", null, "rsa-2048", /^Private-Key: \(2048 bit, 2 primes\)/],
    ["1.3", "ecOnly", "ec-p256", /^Private-Key: \(256 bit\)[\s\S]*NIST CURVE: P-256/],
    ["1.3", null, "ec-p384", /^Private-Key: \(384 bit\)[\s\S]*NIST CURVE: P-384/],
  ] as const) {
    test(`serverkeygen over TLS ${tls} ${label ? "with label" : "without label"}, ${key} CSR: multipart with a PKCS#8 key and its certificate`, async () => {
      const csr = await makeCsr(work, `skg-${tls}-${key}`, { key, sans: ["DNS:skg.example"] });
      const r = await curl(`${f.srv.estBase}${label ? label + "/" : ""}serverkeygen`, { cacert: f.srv.caPem, tls, user: label ? KG : f.userpass, contentType: "application/pkcs10", body: csr.csrB64 });
      assert.equal(r.status, 200, r.text);
      const [keyPart, certPart] = parts(r);
      assert.equal(keyPart.headers, "Content-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n");
      assert.equal(certPart.headers, "Content-Type: application/pkcs7-mime; smime-type=certs-only\r\nContent-Transfer-Encoding: base64\r\n");
      const keyFile = join(work, `skg-${tls}-${key}.key.der`);
      writeFileSync(keyFile, keyPart.der);
      const text = await run("openssl", ["pkey", "-inform", "DER", "-in", keyFile, "-noout", "-text"]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, expect);
      const certFile = join(work, `skg-${tls}-${key}.pem`);
      const { serial } = await saveCert(certPart.der.toString("base64"), certFile);
      assert.equal(await publicKeyOf(keyFile, "pkey", "DER"), await publicKeyOf(certFile, "x509"), "the certificate certifies the generated key");
      assert.notEqual(await publicKeyOf(certFile, "x509"), await publicKeyOf(csr.keyFile, "pkey"), "not the CSR's key");
      const v = await run("openssl", ["verify", "-CAfile", f.srv.caPem, certFile]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
      // The generated private key (its secret: d) is never stored or logged.
      const d = Buffer.from(createPrivateKey({ key: keyPart.der, format: "der", type: "pkcs8" }).export({ format: "jwk" }).d!, "base64url");
      for (const file of readdirSync(f.inst.dir)) {
        if (!file.startsWith("estca.db")) continue;
        assert.equal(readFileSync(join(f.inst.dir, file)).indexOf(d), -1, `${file} holds the key`);
      }
      assert.ok(!f.srv.output().includes(keyPart.der.toString("base64").slice(-40)), "the server log holds the key");
      assert.ok(!f.srv.output().includes(d.toString("base64").slice(0, 20)), "the server log holds the key");
      assert.ok((await requestLog(f.inst.dir)).some((e) => e.serial === serial && e.operation === "serverkeygen"));
    });
  }

  for (const kind of ["ec", "rsa"] as const) {
    test(`serverkeygen with AsymmetricDecryptKeyIdentifier: the key is enveloped for the ${kind.toUpperCase()} TLS client certificate and openssl cms -decrypt opens it`, async () => {
      const c = clients[kind];
      const attr = new x509.Attribute(ASYMMETRIC_DECRYPT_KEY_ID, [new asn1js.OctetString({ valueHex: new Uint8Array(c.ski) }).toBER()]);
      const csr = await x509Csr({ subject: `CN=enc-${kind}`, attributes: [attr], alg: "rsa-2048" });
      const r = await curl(`${f.srv.estBase}serverkeygen`, { cacert: f.srv.caPem, tls: kind === "ec" ? "1.3" : "1.2", cert: c.cert, key: c.key, contentType: "application/pkcs10", body: csr.b64 });
      assert.equal(r.status, 200, r.text);
      const [keyPart, certPart] = parts(r);
      assert.equal(keyPart.headers, "Content-Type: application/pkcs7-mime; smime-type=server-generated-key\r\nContent-Transfer-Encoding: base64\r\n");
      // SignedData by the CA (signed in the token), holding an EnvelopedData.
      const { content, signerPem } = await cmsVerify(keyPart.der, work, `enc-${kind}`);
      assert.equal(new x509.X509Certificate(signerPem).toString("base64"), new x509.X509Certificate(readFileSync(f.srv.caPem, "utf8")).toString("base64"));
      const enveloped = new pkijs.ContentInfo({ contentType: "1.2.840.113549.1.7.3", content: asn1js.fromBER(new Uint8Array(content)).result }).toSchema().toBER();
      const envFile = join(work, `enc-${kind}.env`);
      const pkgFile = join(work, `enc-${kind}.pkg`);
      writeFileSync(envFile, Buffer.from(enveloped));
      const d = await run("openssl", ["cms", "-decrypt", "-inform", "DER", "-in", envFile, "-recip", c.cert, "-inkey", c.key, "-binary", "-out", pkgFile]);
      assert.equal(d.code, 0, d.stderr);
      // An AsymmetricKeyPackage: SEQUENCE OF OneAsymmetricKey (RFC 5958).
      const pkg = asn1js.fromBER(new Uint8Array(readFileSync(pkgFile))).result as asn1js.Sequence;
      const keyFile = join(work, `enc-${kind}.key.der`);
      writeFileSync(keyFile, Buffer.from(pkg.valueBlock.value[0].toBER()));
      const certFile = join(work, `enc-${kind}.pem`);
      await saveCert(certPart.der.toString("base64"), certFile);
      assert.equal(await publicKeyOf(keyFile, "pkey", "DER"), await publicKeyOf(certFile, "x509"));
    });
  }

  test("serverkeygen refusals: a key identifier that is not the client's certificate, no certificate, a profile without keygen", async () => {
    const attr = new x509.Attribute(ASYMMETRIC_DECRYPT_KEY_ID, [new asn1js.OctetString({ valueHex: new Uint8Array(20).fill(1) }).toBER()]);
    const csr = await x509Csr({ subject: "CN=enc-wrong", attributes: [attr] });
    const wrong = await curl(`${f.srv.estBase}serverkeygen`, { cacert: f.srv.caPem, cert: clients.ec.cert, key: clients.ec.key, contentType: "application/pkcs10", body: csr.b64 });
    assert.equal(wrong.status, 400);
    assert.match(wrong.text, /AsymmetricDecryptKeyIdentifier 0101.* does not name the TLS client certificate of this connection \(subjectKeyIdentifier [0-9a-f]{40}\)/);
    const basic = await curl(`${f.srv.estBase}serverkeygen`, { cacert: f.srv.caPem, user: f.userpass, contentType: "application/pkcs10", body: csr.b64 });
    assert.equal(basic.status, 400);
    assert.match(basic.text, /this connection has no TLS client certificate/);
    const plain = await makeCsr(work, "nokeygen");
    const off = await curl(`${f.srv.estBase}nokeygen/serverkeygen`, { cacert: f.srv.caPem, user: KG, contentType: "application/pkcs10", body: plain.csrB64 });
    assert.equal(off.status, 403);
    assert.match(off.text, /profile "nokeygen" does not offer server-side key generation/);
  });

  for (const [tls, label] of [
    ["1.2", null],
    ["1.3", "ecOnly"],
  ] as const) {
    test(`fullcmc over TLS ${tls} ${label ? "with label" : "without label"}: PKIResponse signed by the CA with the certificate and CMCStatusInfoV2 success`, async () => {
      const csr = await x509Csr({ subject: `CN=cmc-${tls}`, sans: [{ type: "dns", value: "cmc.example" }] });
      const body = await fullCmcRequest(csr, { bodyPartId: 7 });
      const r = await curl(`${f.srv.estBase}${label ? label + "/" : ""}fullcmc`, { cacert: f.srv.caPem, tls, user: label ? KG : f.userpass, contentType: "application/pkcs7-mime; smime-type=CMC-request", body: body.toString("base64") });
      assert.equal(r.status, 200, r.text);
      assert.ok(r.rawHeaders.includes("\r\nContent-Type: application/pkcs7-mime; smime-type=CMC-response\r\n"), r.rawHeaders);
      const der = Buffer.from(r.text, "base64");
      const { content, signerPem } = await cmsVerify(der, work, `cmc-${tls}`);
      assert.match(signerPem, /BEGIN CERTIFICATE/);
      const resp = await asn1(content);
      // controlSequence { TaggedAttribute { bodyPartID, id-cmc-statusInfoV2, { CMCStatusInfoV2 { success, { 7 } } } } }
      assert.match(resp, /OBJECT\s+:1\.3\.6\.1\.5\.5\.7\.7\.25\n.*SET\s*\n.*SEQUENCE\s*\n.*INTEGER\s+:00\n.*SEQUENCE\s*\n.*INTEGER\s+:07/);
      const certs = await runBinary("openssl", ["pkcs7", "-inform", "DER", "-print_certs"], der);
      assert.match(certs.stdout.toString(), new RegExp(`subject=CN ?= ?cmc-${tls}`));
      const all = join(work, `cmc-${tls}.certs.pem`);
      writeFileSync(all, certs.stdout);
      const leaf = join(work, `cmc-${tls}.leaf.pem`);
      writeFileSync(leaf, certs.stdout.toString().match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/)![0]);
      const v = await run("openssl", ["verify", "-CAfile", f.srv.caPem, leaf]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
    });
  }

  test("fullcmc failures answer CMCStatusInfoV2 failed with the right CMCFailInfo, never a bare 500", async () => {
    const rsa = await x509Csr({ subject: "CN=cmc-rsa", alg: "rsa-2048" });
    const ec = await x509Csr({ subject: "CN=cmc-ec" });
    // A CSR whose signature is broken: flip the last byte.
    const broken = Buffer.from(ec.der);
    broken[broken.length - 1] ^= 0xff;
    const cases: [string, Buffer | string, string | null, number, number, string][] = [
      ["not CMS", Buffer.from("this is not a CMS message"), null, 400, 2, "badRequest"],
      ["CRMF", await fullCmcRequest(ec, { crmf: true }), null, 400, 2, "badRequest"],
      ["key type not allowed", await fullCmcRequest(rsa), "ecOnly", 400, 0, "badAlg"],
      ["broken PoP", await fullCmcRequest({ der: broken, keys: ec.keys }), null, 400, 9, "popFailed"],
      ["PKIData signed by another key", await fullCmcRequest({ der: ec.der, keys: rsa.keys }), null, 400, 9, "popFailed"],
    ];
    for (const [name, body, label, status, failInfo, failName] of cases) {
      const r = await curl(`${f.srv.estBase}${label ? label + "/" : ""}fullcmc`, { cacert: f.srv.caPem, user: label ? KG : f.userpass, contentType: "application/pkcs7-mime", body: Buffer.from(body).toString("base64") });
      assert.equal(r.status, status, `${name}: ${r.text}`);
      assert.equal(r.headers["content-type"], "application/pkcs7-mime; smime-type=CMC-response", name);
      const { content } = await cmsVerify(Buffer.from(r.text, "base64"), work, `fail-${failName}`);
      const resp = await asn1(content);
      const want = new RegExp(`INTEGER\\s+:02\\n.*SEQUENCE\\s*\\n(.*INTEGER\\s+:[0-9A-F]+\\n)+.*UTF8STRING\\s+:.+\\n.*INTEGER\\s+:${failInfo.toString(16).toUpperCase().padStart(2, "0")}\\n`);
      assert.match(resp, want, `${name}: ${resp}`);
      const log = (await requestLog(f.inst.dir, 1))[0];
      assert.equal(log.status, status);
      assert.match(log.reason ?? "", new RegExp(`^CMC failed \\(${failName}\\): `), name);
    }
    // A user with valid credentials but no right to the profile: badIdentity, 403.
    const add = await estca(["user", "add", "other", "--password-stdin", "--label", "nokeygen", "--data", f.inst.dir], { input: "other-pass-12345\n" });
    assert.equal(add.code, 0, add.stderr);
    const r = await curl(`${f.srv.estBase}fullcmc`, { cacert: f.srv.caPem, user: "other:other-pass-12345", contentType: "application/pkcs7-mime", body: (await fullCmcRequest(ec)).toString("base64") });
    assert.equal(r.status, 403, r.text);
    const { content } = await cmsVerify(Buffer.from(r.text, "base64"), work, "fail-identity");
    assert.match(await asn1(content), /INTEGER\s+:02\n[\s\S]*UTF8STRING\s+:user "other" may use profile "nokeygen", not "default"\n.*INTEGER\s+:07\n/);
    // No credentials at all: a plain 401 with the challenge, as for every operation.
    const anon = await curl(`${f.srv.estBase}fullcmc`, { cacert: f.srv.caPem, contentType: "application/pkcs7-mime", body: (await fullCmcRequest(ec)).toString("base64") });
    assert.equal(anon.status, 401);
    assert.equal(anon.headers["www-authenticate"], 'Basic realm="estca"');
  });
});
