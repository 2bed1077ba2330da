// Issue 7.1: hundreds of malformed requests against every POST operation, with and without a
// label, over real TLS from separate clients (Node's https client, raw TLS sockets, curl,
// openssl s_client). Every one must get a 4xx with a text/plain reason; the server must never
// answer 5xx, never die, and its memory must stay bounded.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { type InitResult, type Server, cleanup, curl, estca, initData, makeCsr, run, startServer, tempDir } from "./helpers/harness.ts";
import { prng, request, rssKb } from "./helpers/robust.ts";
import { editConfig } from "./helpers/est.ts";

const POST_OPS = ["simpleenroll", "simplereenroll", "serverkeygen", "fullcmc"] as const;
const LABELS = [null, "server"] as const;
const BODY_LIMIT = 65536;
const PASSWORD = "malformed-test-password";

interface Case {
  kind: string;
  body: Buffer;
  /** Content-Type to send; undefined: the operation's own; null: none at all. */
  contentType?: string | null;
  headers?: Record<string, string | string[]>;
  /** Needs a connection of its own (the body does not match what the headers announce). */
  fresh?: boolean;
  noAuth?: boolean;
}

const b64 = (b: Uint8Array) => Buffer.from(Buffer.from(b).toString("base64"));

/** Offsets of every tag in a DER structure, found by asn1js (no hand-written parser). */
function tagOffsets(der: Buffer): number[] {
  const out: number[] = [];
  const base = new Uint8Array(der).buffer;
  const buf = new Uint8Array(base);
  const asn = asn1js.fromBER(buf);
  const walk = (b: asn1js.AsnType, depth: number) => {
    const view = (b as unknown as { valueBeforeDecodeView: Uint8Array }).valueBeforeDecodeView;
    if (view && view.buffer === base) out.push(view.byteOffset);
    const inner = (b as unknown as { valueBlock?: { value?: unknown } }).valueBlock?.value;
    if (Array.isArray(inner) && depth < 12) for (const c of inner) walk(c as asn1js.AsnType, depth + 1);
  };
  walk(asn.result, 0);
  return [...new Set(out)].sort((a, b) => a - b);
}

function generateCases(csrDer: Buffer, rsaDer: Buffer, cacertsB64: Buffer): Case[] {
  const rnd = prng(7030);
  const cases: Case[] = [];
  const add = (kind: string, body: Buffer | string, extra: Omit<Case, "kind" | "body"> = {}) => cases.push({ kind, body: Buffer.from(body), ...extra });

  // A valid CSR truncated at many lengths.
  const lens = new Set<number>([1, 2, 3, 4, 5, 7, 10, 16, 31, 64, 100, 128, csrDer.length - 1, csrDer.length - 2, csrDer.length - 10, csrDer.length - 70]);
  for (let i = 0; i < 12; i++) lens.add(1 + Math.floor(rnd() * (csrDer.length - 2)));
  for (const n of lens) add("truncated", b64(csrDer.subarray(0, n)));
  add("truncated", b64(rsaDer.subarray(0, rsaDer.length >> 1)));

  // Bit flips anywhere.
  for (let i = 0; i < 30; i++) {
    const d = Buffer.from(i % 5 === 4 ? rsaDer : csrDer);
    const pos = Math.floor(rnd() * d.length);
    d[pos] ^= 1 << Math.floor(rnd() * 8);
    add("bit flip", b64(d));
  }

  // Wrong ASN.1 tags at real tag positions.
  const tags = tagOffsets(csrDer);
  const wrong = [0x31, 0x04, 0x02, 0x05, 0x0c, 0xa0, 0xa3, 0x1f, 0x00, 0xff, 0x13, 0x03];
  for (let i = 0; i < Math.min(tags.length, 16); i++) {
    const d = Buffer.from(csrDer);
    d[tags[i]] = wrong[i % wrong.length] === d[tags[i]] ? 0x17 : wrong[i % wrong.length];
    add("wrong tag", b64(d));
  }
  for (const t of [0x31, 0x04, 0x60, 0xbf]) {
    const d = Buffer.from(csrDer);
    d[0] = t;
    add("wrong outer tag", b64(d));
  }

  // Lengths larger than the data.
  for (let i = 0; i < Math.min(tags.length, 12); i++) {
    const d = Buffer.from(csrDer);
    const lenAt = tags[i] + 1;
    if (d[lenAt] < 0x80) d[lenAt] = Math.min(0x7f, d[lenAt] + 1 + Math.floor(rnd() * 40));
    else d[lenAt + 1] = 0xff;
    add("length too large", b64(d));
  }
  add("length too large", b64(Buffer.concat([Buffer.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]), csrDer.subarray(4)])));
  add("length too large", b64(Buffer.concat([Buffer.from([0x30, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), csrDer.subarray(4)])));
  add("length too large", b64(Buffer.from([0x30, 0x8f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])));

  // Deeply nested structures: indefinite-length BER, definite-length DER, constructed strings.
  add("deep nesting", b64(Buffer.concat([Buffer.alloc(0), Buffer.from("3080".repeat(20000), "hex")])));
  let nested = Buffer.from([0x05, 0x00]);
  for (let i = 0; i < 3000; i++) {
    const l = nested.length;
    const hdr = l < 0x80 ? Buffer.from([0x30, l]) : l < 0x100 ? Buffer.from([0x30, 0x81, l]) : Buffer.from([0x30, 0x82, l >> 8, l & 0xff]);
    nested = Buffer.concat([hdr, nested]);
  }
  add("deep nesting", b64(nested));
  add("deep nesting", b64(Buffer.from("2480".repeat(15000) + "0000".repeat(15000), "hex")));
  add("deep nesting", b64(Buffer.from("a080".repeat(10000), "hex")));

  // Invalid base64 and stray bytes.
  const good = csrDer.toString("base64");
  for (const ch of ["!", "*", "\u0000", "é", "-", "_", "%", "$", "\u00ff", "\u2028"]) {
    const at = Math.floor(rnd() * good.length);
    add("invalid base64", Buffer.from(good.slice(0, at) + ch + good.slice(at), "utf8"));
  }
  add("invalid base64", good.slice(0, 20) + "====" + good.slice(20));
  add("invalid base64", good + "A");
  add("invalid base64", "====");
  add("invalid base64", "\r\n \t\r\n");
  add("invalid base64", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(good)]));
  add("invalid base64", `-----BEGIN CERTIFICATE REQUEST-----\n${good}\n`);
  add("invalid base64", `-----BEGIN CERTIFICATE REQUEST-----\n!!notbase64!!\n-----END CERTIFICATE REQUEST-----\n`);
  add("invalid base64", `-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`);
  add("stray bytes", b64(Buffer.concat([csrDer, Buffer.from("trailing garbage")])));
  add("stray bytes", b64(Buffer.concat([Buffer.alloc(3), csrDer])));
  add("stray bytes", Buffer.concat([csrDer, Buffer.from([0, 1, 2, 0xff])]), { headers: { "Content-Transfer-Encoding": "binary" } });
  for (let i = 0; i < 8; i++) {
    const n = 1 + Math.floor(rnd() * 3000);
    const junk = Buffer.alloc(n);
    for (let j = 0; j < n; j++) junk[j] = Math.floor(rnd() * 256);
    if (i % 2) junk[0] = 0x30;
    add("stray bytes", junk);
  }

  // Empty bodies.
  add("empty body", "");
  add("empty body", "\n");
  add("empty body", "", { headers: { "Transfer-Encoding": "chunked" } });

  // Bodies over the limit.
  add("over limit", "A".repeat(BODY_LIMIT + 4));
  add("over limit", "QUFB\n".repeat(50_000));
  add("over limit", "A".repeat(BODY_LIMIT * 2), { headers: { "Transfer-Encoding": "chunked" } });
  add("over limit", good, { headers: { "Content-Length": "1000000000000" }, fresh: true });

  // Wrong or missing Content-Type, with a good body.
  for (const ct of [null, "", "text/plain", "application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/pkcs10x", "application", ";;;", "application/pkcs7-mime; smime-type=certs-only", "application/pkcs10, text/html"]) {
    add("content type", good, { contentType: ct });
  }

  // CMC garbage (framed as /fullcmc wants it) and multipart garbage.
  const oid = (o: string) => new asn1js.ObjectIdentifier({ value: o });
  const contentInfo = (o: string, inner: asn1js.AsnType) => Buffer.from(new asn1js.Sequence({ value: [oid(o), new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [inner] })] }).toBER());
  const cmcCt = "application/pkcs7-mime; smime-type=CMC-request";
  add("cmc garbage", b64(contentInfo("1.2.840.113549.1.7.1", new asn1js.OctetString({ valueHex: new Uint8Array([1, 2, 3]) }))), { contentType: cmcCt });
  add("cmc garbage", b64(contentInfo("1.2.840.113549.1.7.2", new asn1js.Sequence({ value: [new asn1js.Integer({ value: 3 })] }))), { contentType: cmcCt });
  add("cmc garbage", b64(contentInfo("1.2.840.113549.1.7.2", new asn1js.Null())), { contentType: cmcCt });
  add("cmc garbage", b64(contentInfo("1.2.840.113549.1.9.16.1.2", new asn1js.OctetString({ valueHex: new Uint8Array(csrDer) }))), { contentType: cmcCt });
  add("cmc garbage", cacertsB64, { contentType: cmcCt });
  add("cmc garbage", cacertsB64.subarray(0, cacertsB64.length >> 1), { contentType: "application/pkcs7-mime" });
  add("cmc garbage", good, { contentType: "application/pkcs7-mime" });
  add("cmc garbage", b64(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])), { contentType: "application/pkcs7" });
  const mp = `--b\r\nContent-Type: application/pkcs10\r\nContent-Transfer-Encoding: base64\r\n\r\n${good}\r\n--b--\r\n`;
  add("multipart garbage", mp, { contentType: "multipart/mixed; boundary=b" });
  add("multipart garbage", mp);
  add("multipart garbage", "--b\r\n\r\n--b--", { contentType: "multipart/mixed; boundary=b" });
  add("multipart garbage", `--${"x".repeat(70)}\r\nContent-Type: application/pkcs8\r\n\r\n\u0000\u0001\r\n`, { contentType: "multipart/mixed" });

  // Huge and malformed headers the Node client can still send.
  add("huge header", good, { headers: { "X-Pad": "a".repeat(20_000) }, fresh: true });
  const many: Record<string, string> = {};
  for (let i = 0; i < 300; i++) many[`X-H${i}`] = "v";
  add("many headers", "", { headers: many });
  for (const auth of ["Basic", "Basic !!!", `Basic ${Buffer.from("nocolon").toString("base64")}`, "Bearer abc.def.ghi", `Basic ${"QUFB".repeat(2500)}`, "Digest username=\"est\"", `Basic ${Buffer.from(":").toString("base64")}`]) {
    add("malformed authorization", good, { noAuth: true, headers: { Authorization: auth } });
  }
  add("no credentials", good, { noAuth: true });
  // Node keeps the first of repeated Content-Type fields.
  add("duplicate content type", good, { contentType: null, headers: { "Content-Type": ["text/plain", "application/pkcs10"] } });
  return cases;
}

/** A request written byte for byte onto a TLS socket: what Node's client refuses to send. */
function rawTls(port: number, ca: string, raw: Buffer | string, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => s.write(raw));
    const done = () => resolve(Buffer.concat(chunks).toString("latin1"));
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("end", () => {
      s.destroy();
      done();
    });
    s.on("error", done);
    s.setTimeout(timeoutMs, () => {
      s.destroy();
      done();
    });
  });
}

/**
 * A 4xx with a reason: text/plain, or on /fullcmc a CMC response (RFC 7030 4.3.2: the refusal
 * is a PKIResponse whose CMCStatusInfoV2 carries the reason).
 */
function assertReason(where: string, status: number, contentType: string | undefined, text: string): void {
  assert.ok(status >= 400 && status < 500, `${where}: expected a 4xx, got ${status}: ${text.slice(0, 200)}`);
  const cmc = /fullcmc/.test(where) && contentType === "application/pkcs7-mime; smime-type=CMC-response";
  assert.ok(cmc || /^text\/plain/.test(contentType ?? ""), `${where}: reason must be text/plain (got ${contentType})`);
  assert.ok(text.trim().length > 5, `${where}: ${status} carries no reason`);
}

describe("malformed input", () => {
  let inst: InitResult;
  let srv: Server;
  let ca: string;
  let auth: string;
  const work = tempDir();
  let csr: Awaited<ReturnType<typeof makeCsr>>;
  let rsa: Awaited<ReturnType<typeof makeCsr>>;

  before(async () => {
    inst = await initData();
    // Malformed Authorization headers are failures too; the throttle must not hide what follows.
    editConfig(inst.dir, (c) => {
      c.security = { authFailuresPerUser: 100_000, authFailuresPerAddress: 100_000, authFailureWindowSeconds: 60, authLockoutSeconds: 1 };
      c.server.bodyLimit = BODY_LIMIT;
    });
    // One user for every label, so each labelled path reaches its parser.
    const add = await estca(["user", "add", "anylabel", "--password-stdin", "--label", "*", "--data", inst.dir], { input: `${PASSWORD}\n` });
    assert.equal(add.code, 0, add.stderr);
    srv = await startServer(inst.dir);
    ca = readFileSync(srv.caPem, "utf8");
    auth = "Basic " + Buffer.from(`anylabel:${PASSWORD}`).toString("base64");
    csr = await makeCsr(work, "good", { sans: ["DNS:good.example"] });
    rsa = await makeCsr(work, "good-rsa", { key: "rsa-2048", sans: ["DNS:good-rsa.example"] });
  });
  after(async () => {
    await srv?.stop();
    cleanup(work);
    if (inst) cleanup(join(inst.dir, ".."));
  });

  test("every malformed body, media type and header gets a 4xx with a reason; no 5xx; bounded memory", async () => {
    const pid = srv.proc.pid!;
    // The unmutated request works, so every 4xx below is caused by the mutation alone.
    const ok = await request(srv.origin, { path: "/.well-known/est/simpleenroll", ca, headers: { Authorization: auth, "Content-Type": "application/pkcs10" }, body: csr.csrB64 });
    assert.equal(ok.status, 200, ok.text);
    const cacerts = await request(srv.origin, { method: "GET", path: "/.well-known/est/cacerts", ca });
    assert.equal(cacerts.status, 200);

    const cases = generateCases(csr.csrDer, rsa.csrDer, cacerts.body);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 6 });
    const rss: number[] = [rssKb(pid)];
    let sent = 0;
    let fiveXX = 0;
    let retried = 0;
    const byStatus = new Map<number, number>();
    const failures: string[] = [];
    const jobs: (() => Promise<void>)[] = [];
    for (const op of POST_OPS) {
      for (const label of LABELS) {
        const path = `/.well-known/est/${label ? label + "/" : ""}${op}`;
        const ownType = op === "fullcmc" ? "application/pkcs7-mime" : "application/pkcs10";
        for (const [i, c] of cases.entries()) {
          jobs.push(async () => {
            const headers: Record<string, string | string[]> = {};
            if (!c.noAuth) headers.Authorization = auth;
            const ct = c.contentType === undefined ? ownType : c.contentType;
            if (ct !== null) headers["Content-Type"] = ct;
            Object.assign(headers, c.headers ?? {});
            const where = `${path} case ${i} (${c.kind})`;
            let r;
            const send = (fresh: boolean) => request(srv.origin, { path, ca, headers: headers as Record<string, string>, body: c.body, agent: fresh ? false : agent });
            try {
              r = await send(!!c.fresh);
            } catch {
              // A keep-alive socket can be closed by the server just as the client reuses it
              // (HTTP/1.1 8.1.4); a real client retries on a new connection, so do we, once.
              retried++;
              try {
                r = await send(true);
              } catch (e) {
                failures.push(`${where}: ${(e as Error).message}`);
                return;
              }
            } finally {
              sent++;
            }
            byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
            if (r.status >= 500) {
              fiveXX++;
              failures.push(`${where}: ${r.status} ${r.text.trim()}`);
              return;
            }
            try {
              assertReason(where, r.status, r.headers["content-type"] as string | undefined, r.text);
            } catch (e) {
              failures.push((e as Error).message);
            }
          });
        }
      }
    }
    // Run with a few in flight at a time, sampling the server's memory as we go.
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const j = jobs[next++];
        await j();
        if (sent % 100 === 0) rss.push(rssKb(pid));
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    agent.destroy();
    rss.push(rssKb(pid));
    console.log(`malformed: ${sent} requests over ${cases.length} cases x ${POST_OPS.length} operations x ${LABELS.length} labels; 5xx seen: ${fiveXX}; retried on a new connection: ${retried}`);
    console.log(`malformed: statuses ${JSON.stringify(Object.fromEntries([...byStatus].sort()))}`);
    console.log(`malformed: server RSS kB ${rss[0]} -> max ${Math.max(...rss)} -> end ${rss[rss.length - 1]}`);
    assert.ok(sent >= 300, `only ${sent} malformed requests`);
    assert.equal(fiveXX, 0, failures.join("\n"));
    assert.deepEqual(failures, []);
    assert.equal(srv.proc.exitCode, null, "the server process died");
    // Bounded: the whole run may not add more than 150 MB to the server.
    assert.ok(Math.max(...rss) - rss[0] < 150 * 1024, `server RSS grew from ${rss[0]} kB to ${Math.max(...rss)} kB`);
  });

  test("malformed OCSP requests on the plain HTTP port never get a 5xx", async () => {
    // OCSP is the other parser open to anyone. RFC 6960 answers a malformed request with HTTP 200
    // and an OCSPResponse whose status says so; what must never happen is a 5xx or a dead server.
    const reqFile = join(work, "ocsp-req.der");
    const o = await run("openssl", ["ocsp", "-issuer", srv.caPem, "-cert", join(inst.dir, "tls", "server.pem"), "-reqout", reqFile, "-no_nonce"]);
    assert.equal(o.code, 0, o.stderr);
    const good = readFileSync(reqFile);
    const rnd = prng(6960);
    const bodies: Buffer[] = [];
    for (let i = 1; i < good.length; i += 2) bodies.push(good.subarray(0, i));
    for (let i = 0; i < 100; i++) {
      const d = Buffer.from(good);
      d[Math.floor(rnd() * d.length)] ^= 1 << Math.floor(rnd() * 8);
      bodies.push(d);
    }
    bodies.push(Buffer.from("3080".repeat(20000), "hex"), Buffer.alloc(0), Buffer.from("not der at all"));
    const byStatus = new Map<number, number>();
    for (const body of bodies) {
      const r = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
        const u = new URL(`${srv.httpBase}/ocsp`);
        const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", headers: { "Content-Type": "application/ocsp-request" } }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        });
        req.on("error", reject);
        req.end(body);
      });
      byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
      assert.ok(r.status < 500, `OCSP answered ${r.status} to ${body.toString("hex").slice(0, 80)}`);
      if (r.status === 200) assert.doesNotThrow(() => new pkijs.OCSPResponse({ schema: asn1js.fromBER(new Uint8Array(r.body)).result }), "a 200 that is not an OCSPResponse");
    }
    console.log(`malformed: ${bodies.length} malformed OCSP requests, statuses ${JSON.stringify(Object.fromEntries([...byStatus].sort()))}, 5xx seen: 0`);
    assert.equal(srv.proc.exitCode, null);
  });

  test("malformed HTTP that only a raw socket, curl or openssl s_client can send gets a 4xx with a reason", async () => {
    const raws: [string, string][] = [
      ["Content-Length not a number", `POST %P HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n`],
      ["Content-Length and chunked", `POST %P HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
      ["two Content-Lengths", `POST %P HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nAAAA`],
      ["bad chunk size", `POST %P HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Type: application/pkcs10\r\n\r\nzz\r\nAAAA\r\n0\r\n\r\n`],
      ["space in header name", `POST %P HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\n\r\n`],
      ["garbage request line", `GARBAGE\r\n\r\n`],
      ["NUL in a header", `POST %P HTTP/1.1\r\nHost: localhost\r\nX-A: a\u0000b\r\n\r\n`],
      ["no HTTP version", `POST %P\r\n\r\n`],
      ["header over 16 kB", `POST %P HTTP/1.1\r\nHost: localhost\r\nX-Big: ${"b".repeat(40_000)}\r\n\r\n`],
      ["unknown method", `BREW %P HTTP/1.1\r\nHost: localhost\r\n\r\n`],
      ["no Host header", `POST %P HTTP/1.1\r\nContent-Type: application/pkcs10\r\nContent-Length: 4\r\n\r\nAAAA`],
      ["bare LF line ends", `POST %P HTTP/1.1\nHost: localhost\nContent-Length: 4\n\nAAAA`],
      ["obsolete line folding", `POST %P HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/\r\n pkcs10\r\nContent-Length: 4\r\n\r\nAAAA`],
      ["HTTP/2 preface on HTTP/1.1", `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`],
    ];
    let n = 0;
    for (const op of POST_OPS) {
      for (const label of LABELS) {
        const path = `/.well-known/est/${label ? label + "/" : ""}${op}`;
        for (const [what, raw] of raws) {
          const reply = await rawTls(srv.port, ca, raw.replace("%P", path));
          n++;
          const m = reply.match(/^HTTP\/1\.1 (\d{3}) /);
          assert.ok(m, `${what} on ${path}: no HTTP answer: ${JSON.stringify(reply.slice(0, 200))}`);
          const status = Number(m[1]);
          const ct = reply.match(/\r\ncontent-type: ([^\r]*)/i)?.[1];
          assertReason(`${what} on ${path}`, status, ct, reply.split("\r\n\r\n").slice(1).join("\r\n\r\n"));
        }
      }
    }
    // curl: an oversized header, and a body that lies about its length.
    const big = await curl(`${srv.estBase}simpleenroll`, { cacert: srv.caPem, user: `anylabel:${PASSWORD}`, contentType: "application/pkcs10", body: csr.csrB64, headers: [`X-Big: ${"c".repeat(20_000)}`] });
    assert.equal(big.status, 431, big.text);
    assert.match(big.text, /headers are larger than the limit/);
    const noType = await curl(`${srv.estBase}server/simpleenroll`, { cacert: srv.caPem, user: `anylabel:${PASSWORD}`, body: csr.csrB64, headers: ["Content-Type:"] });
    assert.equal(noType.status, 415, noType.text);
    // openssl s_client as the client, writing the malformed request itself.
    const s = await run("openssl", ["s_client", "-connect", `127.0.0.1:${srv.port}`, "-servername", "localhost", "-CAfile", srv.caPem, "-quiet"], {
      input: `POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/pkcs10\r\nContent\u0001Length: 3\r\n\r\nabc`,
      timeoutMs: 30_000,
    });
    assert.match(s.stdout, /^HTTP\/1\.1 400 /, s.stdout + s.stderr);
    assert.match(s.stdout, /Content-Type: text\/plain/);
    n += 3;
    console.log(`malformed: ${n} raw-socket, curl and openssl s_client requests with malformed HTTP, all 4xx`);
    assert.equal(srv.proc.exitCode, null);
    // And the server still serves a normal client.
    const good = await curl(`${srv.estBase}simpleenroll`, { cacert: srv.caPem, user: `anylabel:${PASSWORD}`, contentType: "application/pkcs10", body: csr.csrB64 });
    assert.equal(good.status, 200, good.text);
  });
});
