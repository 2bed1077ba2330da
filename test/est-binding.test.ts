// Issue 3: channel binding (RFC 7030 3.5) on TLS 1.2 (tls-unique) and TLS 1.3 (tls-exporter),
// computed by a separate client process from its own side of the connection; and /csrattrs.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, cleanup, curl, makeCsr, run, runBinary, tempDir } from "./helpers/harness.ts";
import { type EstFixture, estFixture, requestLog } from "./helpers/est.ts";

type Mode = "correct" | "wrong" | "short" | "none";
interface CbReply {
  status: number;
  body: string;
  binding: string;
  sent: string | null;
  protocol: string;
  resumed: boolean;
}

describe("channel binding and /csrattrs", () => {
  let f: EstFixture;
  const work = tempDir();

  before(async () => {
    f = await estFixture((c) => {
      c.profiles.cbreq = { channelBinding: "required" };
      c.profiles.cboff = { channelBinding: "off" };
      c.profiles.attrs = {
        channelBinding: "optional",
        csrattrs: ["challengePassword", "ec-p384", "rsa-3072", { attribute: "extensionRequest", values: ["subjectAltName"] }, "ecdsa-with-SHA384", "macAddress", "1.3.6.1.4.1.99999.1"],
      };
    });
    const { estca } = await import("./helpers/harness.ts");
    const add = await estca(["user", "add", "cb", "--password-stdin", "--label", "*", "--data", f.inst.dir], { input: "cb-pass-1234567\n" });
    assert.equal(add.code, 0, add.stderr);
  });
  after(async () => {
    await f?.stop();
    cleanup(work);
  });

  async function cbClient(tls: "TLSv1.2" | "TLSv1.3", label: string | null, mode: Mode, resume = false): Promise<CbReply> {
    const args = { port: f.srv.port, path: `/.well-known/est/${label ? label + "/" : ""}simpleenroll`, ca: f.srv.caPem, tls, userpass: "cb:cb-pass-1234567", mode, resume };
    const r = await run(process.execPath, ["--import", "tsx", join(ROOT, "test", "helpers", "cb-client.ts"), JSON.stringify(args)], { cwd: ROOT });
    assert.equal(r.code, 0, r.stderr);
    const reply = JSON.parse(r.stdout.trim()) as CbReply;
    assert.equal(reply.protocol, tls);
    return reply;
  }

  for (const [tls, type, size] of [
    ["TLSv1.2", "tls-unique", 16],
    ["TLSv1.3", "tls-exporter", 44],
  ] as const) {
    const human = tls.replace("TLSv", "TLS ");
    test(`${human}: the ${type} value computed by the client enrolls; a wrong one is refused with the binding named`, async () => {
      const ok = await cbClient(tls, "cbreq", "correct");
      assert.equal(ok.binding.length, size);
      assert.equal(ok.status, 200, ok.body);

      const bad = await cbClient(tls, "cbreq", "wrong");
      assert.equal(bad.status, 400);
      assert.equal(bad.body.trim(), `challengePassword does not match the ${type} value of this ${human} connection`);

      const none = await cbClient(tls, "cbreq", "none");
      assert.equal(none.status, 400);
      assert.equal(none.body.trim(), `profile "cbreq" requires channel binding: the CSR's challengePassword must carry the base64 ${type} value of this ${human} connection`);

      const log = await requestLog(f.inst.dir, 5);
      assert.ok(log.some((e) => e.status === 400 && e.tlsVersion === tls && e.reason === `challengePassword does not match the ${type} value of this ${human} connection`), "logged with the exact reason");
    });

    test(`${human}: optional binding checks a value when sent; off ignores it`, async () => {
      assert.equal((await cbClient(tls, null, "correct")).status, 200, "default profile: optional");
      assert.equal((await cbClient(tls, null, "none")).status, 200);
      assert.equal((await cbClient(tls, null, "wrong")).status, 400);
      assert.equal((await cbClient(tls, "cboff", "wrong")).status, 200);
    });
  }

  test("TLS 1.2 with a resumed session: tls-unique is the server's Finished, and the server knows it", async () => {
    const ok = await cbClient("TLSv1.2", "cbreq", "correct", true);
    assert.equal(ok.resumed, true);
    assert.equal(ok.status, 200, ok.body);
    const bad = await cbClient("TLSv1.2", "cbreq", "wrong", true);
    assert.equal(bad.status, 400);
  });

  test("a TLS 1.2-sized value on a TLS 1.3 connection gets a hint", async () => {
    const r = await cbClient("TLSv1.3", "cbreq", "short");
    assert.equal(r.status, 400);
    assert.match(r.body, /tls-exporter value of this TLS 1\.3 connection \(it looks like a TLS 1\.2 tls-unique value\)/);
  });

  test("curl, which cannot compute a binding, is refused by a binding-required profile and told why", async () => {
    const csr = await makeCsr(work, "nocb");
    const r = await curl(`${f.srv.estBase}cbreq/simpleenroll`, { cacert: f.srv.caPem, tls: "1.2", user: "cb:cb-pass-1234567", contentType: "application/pkcs10", body: csr.csrB64 });
    assert.equal(r.status, 400);
    assert.match(r.text, /must carry the base64 tls-unique value of this TLS 1\.2 connection/);
  });

  async function asn1parse(b64: string): Promise<{ text: string; der: Buffer }> {
    const der = Buffer.from(b64, "base64");
    const p = await runBinary("openssl", ["asn1parse", "-inform", "DER", "-i"], der);
    assert.equal(p.code, 0, p.stderr);
    return { text: p.stdout.toString(), der };
  }

  for (const tls of ["1.2", "1.3"] as const) {
    test(`/csrattrs over TLS ${tls}: DER CsrAttrs that openssl asn1parse reads, nothing after it`, async () => {
      const plain = await curl(`${f.srv.estBase}csrattrs`, { cacert: f.srv.caPem, tls });
      assert.equal(plain.status, 200);
      assert.ok(plain.rawHeaders.includes("\r\nContent-Type: application/csrattrs\r\n"), plain.rawHeaders);
      assert.ok(plain.rawHeaders.includes("\r\nContent-Transfer-Encoding: base64\r\n"));
      assert.equal(plain.text, "MAA=\n", "the default profile asks for nothing: an empty SEQUENCE");

      const req = await curl(`${f.srv.estBase}cbreq/csrattrs`, { cacert: f.srv.caPem, tls });
      const p1 = await asn1parse(req.text);
      assert.match(p1.text, /OBJECT\s+:challengePassword/);

      const full = await curl(`${f.srv.estBase}attrs/csrattrs`, { cacert: f.srv.caPem, tls });
      assert.equal(full.status, 200);
      assert.match(full.text, /^[A-Za-z0-9+/=\n]+$/);
      const { text, der } = await asn1parse(full.text);
      // One SEQUENCE whose length covers the whole body: no trailing NUL or junk.
      assert.match(text, new RegExp(`^\\s*0:d=0\\s+hl=\\d+ l=\\s*${der.length - (der[1] & 0x80 ? 2 + (der[1] & 0x7f) : 2)} cons: SEQUENCE`));
      for (const want of [/OBJECT\s+:challengePassword/, /OBJECT\s+:id-ecPublicKey\n.*SET\s*\n.*OBJECT\s+:secp384r1/, /OBJECT\s+:rsaEncryption\n.*SET\s*\n.*INTEGER\s+:0C00/, /OBJECT\s+:Extension Request/, /OBJECT\s+:X509v3 Subject Alternative Name/, /OBJECT\s+:ecdsa-with-SHA384/, /OBJECT\s+:1\.3\.6\.1\.1\.1\.1\.22/, /OBJECT\s+:1\.3\.6\.1\.4\.1\.99999\.1/]) {
        assert.match(text, want);
      }
    });
  }
});
