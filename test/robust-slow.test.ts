// Issue 7.2: slow and greedy clients. Header, body, handshake and idle timeouts hold; a thousand
// idle or half-open connections do not keep a normal client (curl) from enrolling; repeated
// Basic-auth failures per user and per address get 429 + Retry-After, and the lock ends by itself.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type InitResult, type Server, cleanup, curl, initData, makeCsr, run, startServer, tempDir } from "./helpers/harness.ts";
import { fdLimit, openFds, sleep } from "./helpers/robust.ts";
import { editConfig } from "./helpers/est.ts";

/** Generous: the configured timeouts are 1.5 s and 3 s; Node checks them every 375 ms. */
const CUT_OFF_WITHIN_MS = 30_000;

interface Watched {
  sock: net.Socket;
  closed: Promise<{ ms: number; data: string }>;
}

/** Follows a socket until the server closes it, collecting what it sent. */
function watch(sock: net.Socket): Watched {
  const started = Date.now();
  let data = "";
  sock.on("data", (d: Buffer) => (data += d.toString("latin1")));
  const closed = new Promise<{ ms: number; data: string }>((resolve) => {
    sock.on("close", () => resolve({ ms: Date.now() - started, data }));
    sock.on("error", () => {});
  });
  return { sock, closed };
}

function tlsConnect(port: number, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => resolve(s));
    s.once("error", reject);
  });
}

function tcpConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => resolve(s));
    s.once("error", reject);
  });
}

async function cutOff(w: Watched, what: string, drip?: () => void): Promise<{ ms: number; data: string }> {
  const timer = drip ? setInterval(drip, 300) : null;
  const guard = sleep(CUT_OFF_WITHIN_MS).then(() => null);
  const r = await Promise.race([w.closed, guard]);
  if (timer) clearInterval(timer);
  w.sock.destroy();
  assert.ok(r, `${what}: the server still holds the connection after ${CUT_OFF_WITHIN_MS} ms`);
  console.log(`slow: ${what}: closed by the server after ${r.ms} ms`);
  return r;
}

describe("slow and greedy clients", () => {
  let inst: InitResult;
  let srv: Server;
  let ca: string;
  const work = tempDir();

  before(async () => {
    inst = await initData();
    editConfig(inst.dir, (c) => {
      c.server.headersTimeoutMs = 1500;
      c.server.requestTimeoutMs = 3000;
      c.server.keepAliveTimeoutMs = 1000;
      c.security = { authFailuresPerUser: 3, authFailuresPerAddress: 8, authFailureWindowSeconds: 60, authLockoutSeconds: 3 };
    });
    srv = await startServer(inst.dir);
    ca = readFileSync(srv.caPem, "utf8");
  });
  after(async () => {
    await srv?.stop();
    cleanup(work);
    if (inst) cleanup(join(inst.dir, ".."));
  });

  test("header timeout: a client that drips its headers is answered 408 and cut off", async () => {
    const s = await tlsConnect(srv.port, ca);
    const w = watch(s);
    s.write("POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\n");
    let i = 0;
    const r = await cutOff(w, "dripping headers", () => s.writable && s.write(`X-Drip-${i++}: x\r\n`));
    assert.match(r.data, /^HTTP\/1\.1 408 /);
    assert.match(r.data, /not received completely in time/);
  });

  test("body timeout: a slowloris body is answered 408 and cut off", async () => {
    const s = await tlsConnect(srv.port, ca);
    const w = watch(s);
    const auth = Buffer.from(`est:${inst.estPassword}`).toString("base64");
    s.write(`POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic ${auth}\r\nContent-Type: application/pkcs10\r\nContent-Length: 5000\r\n\r\n`);
    const r = await cutOff(w, "dripping body", () => s.writable && s.write("A"));
    assert.match(r.data, /^HTTP\/1\.1 408 /);
  });

  test("handshake timeout: TCP connections that never finish TLS are closed", async () => {
    const silent = watch(await tcpConnect(srv.port));
    const partial = await tcpConnect(srv.port);
    const wp = watch(partial);
    // The first bytes of a TLS record header, then nothing.
    partial.write(Buffer.from([0x16, 0x03, 0x01, 0x02]));
    await cutOff(silent, "silent TCP connection");
    await cutOff(wp, "half-sent ClientHello");
  });

  test("idle timeouts: no request after the handshake, and an idle keep-alive connection, are closed", async () => {
    const idle = watch(await tlsConnect(srv.port, ca));
    const r1 = await cutOff(idle, "TLS connection that never sends a request");
    assert.doesNotMatch(r1.data, /^HTTP\/1\.1 [^4]/);
    const ka = await tlsConnect(srv.port, ca);
    const w = watch(ka);
    ka.write("GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\nUser-Agent: robust-test\r\n\r\n");
    const r2 = await cutOff(w, "idle keep-alive connection after one request");
    assert.match(r2.data, /^HTTP\/1\.1 200 /, "the request itself was served");
  });

  test("repeated Basic failures for one user get 429 with Retry-After, and the lock ends by itself", async () => {
    const url = `${srv.estBase}simpleenroll`;
    const csr = await makeCsr(work, "throttle-user");
    const attempt = (user: string) => curl(url, { cacert: srv.caPem, user, contentType: "application/pkcs10", body: csr.csrB64 });
    for (let i = 0; i < 3; i++) {
      const r = await attempt("est:wrong-password");
      assert.equal(r.status, 401, r.text);
    }
    const locked = await attempt(`est:${inst.estPassword}`);
    assert.equal(locked.status, 429, `the right password is refused while the user is locked: ${locked.text}`);
    assert.match(locked.text, /too many failed logins for user "est"/);
    const wait = Number(locked.headers["retry-after"]);
    assert.ok(wait >= 1 && wait <= 3, `Retry-After ${locked.headers["retry-after"]}`);
    await sleep(wait * 1000 + 300);
    const back = await attempt(`est:${inst.estPassword}`);
    assert.equal(back.status, 200, `after Retry-After the user may enroll again: ${back.text}`);
  });

  test("repeated Basic failures from one address get 429 with Retry-After, whatever the user name, and end by itself", async () => {
    const url = `${srv.estBase}simpleenroll`;
    const csr = await makeCsr(work, "throttle-addr");
    const attempt = (user: string) => curl(url, { cacert: srv.caPem, user, contentType: "application/pkcs10", body: csr.csrB64 });
    let locked = null;
    let tries = 0;
    while (tries < 10 && !locked) {
      const r = await attempt(`guess-${tries++}:x`);
      if (r.status === 429) locked = r;
      else assert.equal(r.status, 401, r.text);
    }
    assert.ok(locked, "10 failures from one address were never throttled");
    assert.match(locked.text, /too many failed logins for client address 127\.0\.0\.1/);
    const good = await attempt(`est:${inst.estPassword}`);
    assert.equal(good.status, 429, "a locked address is refused even with a right password");
    const wait = Number(good.headers["retry-after"]);
    assert.ok(wait >= 1 && wait <= 3, `Retry-After ${good.headers["retry-after"]}`);
    console.log(`slow: address locked after ${tries} failures; Retry-After ${wait} s`);
    await sleep(wait * 1000 + 300);
    const back = await attempt(`est:${inst.estPassword}`);
    assert.equal(back.status, 200, back.text);
  });
});

describe("a thousand idle and half-open connections", () => {
  let inst: InitResult;
  let srv: Server;
  const work = tempDir();

  before(async () => {
    inst = await initData();
    // Long timeouts, so that all 1,000 connections are still open when curl comes.
    editConfig(inst.dir, (c) => {
      c.server.headersTimeoutMs = 120_000;
      c.server.requestTimeoutMs = 120_000;
    });
    srv = await startServer(inst.dir);
  });
  after(async () => {
    await srv?.stop();
    cleanup(work);
    if (inst) cleanup(join(inst.dir, ".."));
  });

  test("do not keep curl from enrolling", async () => {
    const pid = srv.proc.pid!;
    // Both ends need room for 1,000+ sockets; raise the limits if the environment is tight.
    for (const p of [process.pid, pid]) {
      if (fdLimit(p) < 2500) {
        const r = await run("prlimit", ["--pid", String(p), "--nofile=8192:8192"]);
        assert.equal(r.code, 0, `cannot raise the open-file limit of ${p} for this test: ${r.stderr}`);
      }
    }
    const ca = readFileSync(srv.caPem, "utf8");
    const socks: net.Socket[] = [];
    const auth = Buffer.from(`est:${inst.estPassword}`).toString("base64");
    const batch = async (n: number, open: (i: number) => Promise<net.Socket>) => {
      for (let i = 0; i < n; i += 50) socks.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => open(i + j)))));
    };
    // 400 TCP connections that never start TLS (half-open from the server's view).
    await batch(400, () => tcpConnect(srv.port));
    // 300 TLS connections that never send a request.
    await batch(300, () => tlsConnect(srv.port, ca));
    // 300 TLS connections stuck in the middle of a request: half the headers, or headers and no body.
    await batch(300, async (i) => {
      const s = await tlsConnect(srv.port, ca);
      s.write(i % 2 ? "POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\n" : `POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic ${auth}\r\nContent-Type: application/pkcs10\r\nContent-Length: 900\r\n\r\nMIIB`);
      return s;
    });
    for (const s of socks) s.on("error", () => {});
    const held = openFds(pid);
    console.log(`slow: ${socks.length} idle/half-open connections open; the server holds ${held} file descriptors (limit ${fdLimit(pid)})`);
    assert.ok(held >= 1000, `the server holds only ${held} descriptors: the connections did not arrive`);

    const csr = await makeCsr(work, "while-flooded");
    const r = await curl(`${srv.estBase}simpleenroll`, { cacert: srv.caPem, user: `est:${inst.estPassword}`, contentType: "application/pkcs10", body: csr.csrB64 });
    assert.equal(r.status, 200, r.text + r.curlStderr);
    const alive = socks.filter((s) => !s.destroyed).length;
    console.log(`slow: curl enrolled (200) while ${alive} of the ${socks.length} connections were still open`);
    assert.ok(alive >= 900, `only ${alive} connections were still open when curl enrolled`);
    for (const s of socks) s.destroy();
  });
});
