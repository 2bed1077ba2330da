// Issue 3: the EST wire format, byte for byte, with curl + openssl and strongSwan's pki as clients.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { cleanup, curl, estca, makeCsr, run, tempDir } from "./helpers/harness.ts";
import { type EstFixture, estFixture, pki, requestLog, saveCert, wrap } from "./helpers/est.ts";

const CERTS_ONLY_LINE = "Content-Type: application/pkcs7-mime; smime-type=certs-only\r\n";

/** The rules of ../shared/est-interop.md that hold for every base64 success answer to curl. */
function assertStrictBase64Answer(r: { rawHeaders: string; body: Buffer }): void {
  assert.ok(r.rawHeaders.includes("\r\nContent-Transfer-Encoding: base64\r\n"), r.rawHeaders);
  const len = r.rawHeaders.match(/\r\nContent-Length: (\d+)\r\n/);
  assert.ok(len, `Content-Length spelled exactly: ${r.rawHeaders}`);
  assert.equal(Number(len[1]), r.body.length);
  assert.doesNotMatch(r.rawHeaders, /transfer-encoding: chunked/i);
  assert.ok(r.rawHeaders.split("\r\n").filter((l) => l.includes(":")).length <= 16, "at most 16 headers");
  const text = r.body.toString("latin1");
  assert.ok(text.endsWith("\n"), "final newline");
  const lines = text.slice(0, -1).split("\n");
  for (const [i, l] of lines.entries()) {
    assert.match(l, /^[A-Za-z0-9+/=]+$/, `line ${i} is pure base64`);
    if (i < lines.length - 1) assert.equal(l.length, 64, `line ${i} is 64 columns`);
    else assert.ok(l.length <= 64);
  }
}

describe("EST wire format", () => {
  let f: EstFixture;
  const work = tempDir();
  let labUser: string;

  before(async () => {
    f = await estFixture((c) => {
      c.profiles.lab = { description: "a labelled profile", sanTypes: ["dns"] };
    });
    labUser = "lab:lab-pass-123456";
    const add = await estca(["user", "add", "lab", "--password-stdin", "--label", "*", "--data", f.inst.dir], { input: "lab-pass-123456\n" });
    assert.equal(add.code, 0, add.stderr);
  });
  after(async () => {
    await f?.stop();
    cleanup(work);
  });

  for (const tls of ["1.2", "1.3"] as const) {
    for (const label of [null, "lab"]) {
      const base = () => `${f.srv.estBase}${label ? label + "/" : ""}`;
      test(`cacerts over TLS ${tls} ${label ? "with label" : "without label"}: certs-only, 64 columns, final newline`, async () => {
        const r = await curl(`${base()}cacerts`, { cacert: f.srv.caPem, tls });
        assert.equal(r.status, 200, r.text);
        assert.ok(r.rawHeaders.includes(`\r\n${CERTS_ONLY_LINE}`), r.rawHeaders);
        assertStrictBase64Answer(r);
        const pem = await saveCert(r, join(work, `cacerts-${tls}-${label}.pem`));
        const ca = await run("openssl", ["x509", "-in", f.srv.caPem, "-noout", "-serial"]);
        assert.equal(pem.serial, ca.stdout.trim().split("=")[1].toLowerCase().replace(/^0+/, ""));
      });

      test(`simpleenroll over TLS ${tls} ${label ? "with label" : "without label"}, Basic up front`, async () => {
        const csr = await makeCsr(work, `e-${tls}-${label}`, { sans: [`DNS:e-${tls}.example`] });
        const r = await curl(`${base()}simpleenroll`, { cacert: f.srv.caPem, tls, user: label ? labUser : f.userpass, contentType: "application/pkcs10", body: csr.csrB64 });
        assert.equal(r.status, 200, r.text);
        assert.ok(r.rawHeaders.includes(`\r\n${CERTS_ONLY_LINE}`), r.rawHeaders);
        assertStrictBase64Answer(r);
        const out = join(work, `e-${tls}-${label}.pem`);
        const { serial } = await saveCert(r, out);
        const v = await run("openssl", ["verify", "-CAfile", f.srv.caPem, out]);
        assert.equal(v.code, 0, v.stdout + v.stderr);
        const log = (await requestLog(f.inst.dir)).find((e) => e.serial === serial);
        assert.equal(log?.tlsVersion, tls === "1.2" ? "TLSv1.2" : "TLSv1.3");
        assert.equal(log?.label, label);
        assert.equal(log?.operation, "simpleenroll");
      });
    }
  }

  test("an unknown label is 404 for every operation", async () => {
    for (const op of ["cacerts", "csrattrs"]) {
      const r = await curl(`${f.srv.estBase}nosuch/${op}`, { cacert: f.srv.caPem });
      assert.equal(r.status, 404);
      assert.match(r.text, /unknown label "nosuch"/);
    }
    const csr = await makeCsr(work, "nolabel");
    for (const op of ["simpleenroll", "simplereenroll", "serverkeygen", "fullcmc"]) {
      const r = await curl(`${f.srv.estBase}nosuch/${op}`, { cacert: f.srv.caPem, user: f.userpass, contentType: op === "fullcmc" ? "application/pkcs7-mime" : "application/pkcs10", body: csr.csrB64 });
      assert.equal(r.status, 404, `${op}: ${r.text}`);
      assert.match(r.headers["content-type"], /^text\/plain/);
      assert.match(r.text, /unknown label "nosuch"/);
    }
    const bad = await curl(`${f.srv.estBase}%E0%A4%A/cacerts`, { cacert: f.srv.caPem });
    assert.equal(bad.status, 404, "a malformed escape in the label is an unknown label, not a 500");
  });

  test("401 names the Basic scheme exactly, and credentials sent after it (curl --anyauth) work", async () => {
    const csr = await makeCsr(work, "anyauth");
    const no = await curl(`${f.srv.estBase}simpleenroll`, { cacert: f.srv.caPem, contentType: "application/pkcs10", body: csr.csrB64 });
    assert.equal(no.status, 401);
    assert.ok(no.rawHeaders.includes('\r\nWWW-Authenticate: Basic realm="estca"\r\n'), no.rawHeaders);
    assert.match(no.headers["content-type"], /^text\/plain/);
    for (const tls of ["1.2", "1.3"] as const) {
      const r = await curl(`${f.srv.estBase}simpleenroll`, { cacert: f.srv.caPem, tls, user: f.userpass, anyAuth: true, contentType: "application/pkcs10", body: csr.csrB64, extra: ["-v"] });
      assert.equal(r.status, 200, r.text);
      assert.match(r.curlStderr, /< HTTP\/1\.1 401/, "curl saw the 401 first");
      assert.match(r.curlStderr, /> Authorization: Basic/);
    }
    const wrong = await curl(`${f.srv.estBase}simpleenroll`, { cacert: f.srv.caPem, user: "est:wrong", contentType: "application/pkcs10", body: csr.csrB64 });
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /wrong password for user "est"/);
  });

  test("requests are accepted liberally: chunked, PEM, wrapped at 64 or 76, CRLF, one line, with or without Content-Transfer-Encoding", async () => {
    const csr = await makeCsr(work, "liberal");
    const variants: [string, Parameters<typeof curl>[1]][] = [
      ["chunked", { body: csr.csrB64, chunked: true }],
      ["chunked TLS 1.2", { body: wrap(csr.csrB64, 64), chunked: true, tls: "1.2" }],
      ["PEM", { body: csr.csrPem }],
      ["PEM, CRLF", { body: csr.csrPem.replace(/\n/g, "\r\n") }],
      ["64 columns LF", { body: wrap(csr.csrB64, 64) }],
      ["76 columns CRLF", { body: wrap(csr.csrB64, 76, "\r\n") }],
      ["one line, no newline", { body: csr.csrB64 }],
      ["with Content-Transfer-Encoding", { body: wrap(csr.csrB64, 64), headers: ["Content-Transfer-Encoding: base64"] }],
      ["type with parameters and other casing", { body: csr.csrB64, contentType: "Application/PKCS10; name=req.p10" }],
    ];
    for (const [name, opts] of variants) {
      const r = await curl(`${f.srv.estBase}simpleenroll`, { cacert: f.srv.caPem, user: f.userpass, contentType: "application/pkcs10", ...opts });
      assert.equal(r.status, 200, `${name}: ${r.text}`);
      assert.ok(r.rawHeaders.includes(`\r\n${CERTS_ONLY_LINE}`), name);
    }
  });

  test("error statuses: 400 bad base64, 400 not a CSR, 413, 415, 405, 404, each text/plain with its reason", async () => {
    const csr = await makeCsr(work, "errors");
    const post = (opts: Parameters<typeof curl>[1], op = "simpleenroll") => curl(`${f.srv.estBase}${op}`, { cacert: f.srv.caPem, user: f.userpass, contentType: "application/pkcs10", ...opts });
    const cases: [string, Promise<Awaited<ReturnType<typeof curl>>>, number, RegExp][] = [
      ["alphabet", post({ body: csr.csrB64.slice(0, 20) + "*" + csr.csrB64.slice(20) }), 400, /not valid base64 \(character "\*" at offset 20\)/],
      ["alphabet in PEM", post({ body: csr.csrPem.replace(/\n(.)/, "\n$1!") }), 400, /not valid base64/],
      ["not a CSR", post({ body: Buffer.from("hello world, not a request").toString("base64") }), 400, /not a PKCS#10 certification request/],
      ["empty", post({ body: "" }), 400, /empty/],
      ["413 sized", post({ body: "A".repeat(70 * 1024) }), 413, /larger than the limit of 65536 bytes/],
      ["413 chunked", post({ body: "A".repeat(70 * 1024), chunked: true }), 413, /larger than the limit of 65536 bytes/],
      ["415", post({ body: csr.csrB64, contentType: "text/plain" }), 415, /Content-Type text\/plain is not accepted by \/simpleenroll; send application\/pkcs10/],
      ["405 GET enroll", curl(`${f.srv.estBase}simpleenroll`, { cacert: f.srv.caPem }), 405, /\/simpleenroll takes POST, not GET/],
      ["405 POST cacerts", curl(`${f.srv.estBase}cacerts`, { cacert: f.srv.caPem, body: "x", contentType: "application/pkcs10" }), 405, /\/cacerts takes GET, not POST/],
      ["404 op", curl(`${f.srv.estBase}enrollme`, { cacert: f.srv.caPem }), 404, /unknown EST operation "enrollme"/],
      ["404 op with label", curl(`${f.srv.estBase}lab/enrollme`, { cacert: f.srv.caPem }), 404, /unknown EST operation "enrollme"/],
      ["404 base URL given twice", curl(`${f.srv.estBase}/.well-known/est/cacerts`, { cacert: f.srv.caPem }), 404, /\/\.well-known\/est\/\/\.well-known\/est\/cacerts is not an EST path: use \/\.well-known\/est\/OP or \/\.well-known\/est\/LABEL\/OP/],
    ];
    for (const [name, p, status, reason] of cases) {
      const r = await p;
      assert.equal(r.status, status, `${name}: ${r.text}`);
      assert.match(r.text, reason, name);
      assert.match(r.headers["content-type"] ?? "", /^text\/plain/, name);
      assert.ok(r.rawHeaders.includes("\r\nContent-Length: "), name);
    }
    const log = await requestLog(f.inst.dir, 40);
    const bad = log.find((e) => e.status === 400 && /offset 20/.test(e.reason ?? ""));
    assert.ok(bad, "the request log records the exact reason");
    assert.equal(bad.operation, "simpleenroll");
    assert.equal(bad.clientIdentity, "user:est");
    assert.match(bad.tlsVersion ?? "", /^TLSv1\.[23]$/);
    assert.ok(log.some((e) => e.status === 405 && e.reason === "/cacerts takes GET, not POST"));
    assert.ok(log.some((e) => e.status === 404 && /is not an EST path/.test(e.reason ?? "")), "a wrong base URL is logged too");
  });

  test("a client that sends neither User-Agent nor Accept (strongSwan's pki) gets one unbroken base64 line", async () => {
    const body = await new Promise<Buffer>((resolve, reject) => {
      // Node's client adds no User-Agent or Accept by itself: the same request line strongSwan sends.
      const req = https.request(`${f.srv.estBase}cacerts`, { ca: readFileSync(f.srv.caPem), agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve(Buffer.concat(chunks)));
      });
      req.once("error", reject);
      req.end();
    });
    assert.match(body.toString("latin1"), /^[A-Za-z0-9+/]+=*$/, "no line breaks at all");
    const wrapped = await curl(`${f.srv.estBase}cacerts`, { cacert: f.srv.caPem });
    assert.equal(wrapped.text.replace(/\n/g, ""), body.toString("latin1"), "the same bytes, laid out differently");
  });

  test("Connection: close is honoured: the answer says so and the server closes the socket", async () => {
    const r = await curl(`${f.srv.estBase}cacerts`, { cacert: f.srv.caPem, headers: ["Connection: close"] });
    assert.equal(r.status, 200);
    assert.ok((r.rawHeaders + "\r\n").includes("\r\nConnection: close\r\n"), r.rawHeaders);
    // The client keeps its end open and waits: only the server can close the socket.
    const closed = await new Promise<string>((resolve, reject) => {
      const req = https.request(`${f.srv.estBase}cacerts`, { ca: readFileSync(f.srv.caPem), agent: false, headers: { Connection: "close" } }, (res) => {
        res.resume();
        res.socket.once("close", () => resolve(String(res.headers.connection)));
      });
      req.once("error", reject);
      req.setTimeout(25_000, () => reject(new Error("the server did not close the socket")));
      req.end();
    });
    assert.equal(closed, "close");
  });

  for (const tls of ["1.2", "1.3"] as const) {
    test(`strongSwan pki --estca and pki --est over TLS ${tls} (unlabelled: its URL is a prefix before /.well-known/est/)`, async () => {
      // strongSwan's own TLS stack, pinned to one version through its configuration file.
      const conf = join(work, `strongswan-${tls}.conf`);
      writeFileSync(conf, `libtls {\n  version_min = ${tls}\n  version_max = ${tls}\n}\n`);
      const env = { ...process.env, STRONGSWAN_CONF: conf };
      const url = f.srv.origin;
      const caout = join(work, `sw-ca-${tls}.pem`);
      const ca = await pki(["--estca", "--url", url, "--cacert", f.srv.caPem, "--caout", caout, "--outform", "pem"], env);
      assert.equal(ca.code, 0, ca.stdout + ca.stderr);
      assert.match(ca.stdout + ca.stderr, /Root CA cert is trusted/);
      assert.equal(readFileSync(caout, "utf8").replace(/\s/g, ""), readFileSync(f.srv.caPem, "utf8").replace(/\s/g, ""));
      const caLog = (await requestLog(f.inst.dir, 1))[0];
      assert.equal(caLog.operation, "cacerts");
      assert.equal(caLog.tlsVersion, `TLSv${tls}`);

      const csr = await makeCsr(work, `strongswan-${tls}`, { key: "rsa-2048", sans: ["DNS:sw.example"] });
      const e = await pki(["--est", "--url", url, "--cacert", f.srv.caPem, "--in", csr.csrFile, "--userpass", f.userpass, "--outform", "pem"], env);
      assert.equal(e.code, 0, e.stdout + e.stderr);
      const out = join(work, `sw-${tls}.pem`);
      writeFileSync(out, e.stdout);
      const v = await run("openssl", ["verify", "-CAfile", f.srv.caPem, out]);
      assert.equal(v.code, 0, v.stdout + v.stderr + e.stderr);
      const subj = await run("openssl", ["x509", "-in", out, "-noout", "-subject"]);
      assert.match(subj.stdout, new RegExp(`CN ?= ?strongswan-${tls.replace(".", "\\.")}`));
      const log = (await requestLog(f.inst.dir, 1))[0];
      assert.equal(log.operation, "simpleenroll");
      assert.equal(log.status, 200);
      assert.equal(log.clientIdentity, "user:est");
      assert.equal(log.tlsVersion, `TLSv${tls}`);
    });
  }
});
