// Issue 7.6: secrets and TLS. The logs hold no PIN, password or private key; the data directory
// stays private (0600 files, 0700 folders) after the server ran; TLS 1.0/1.1 are refused, TLS 1.2
// offers only forward-secret AEAD suites, TLS 1.3 works; server-generated keys never touch the disk.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { type InitResult, type Server, cleanup, curl, initData, makeCsr, run, startServer, tempDir } from "./helpers/harness.ts";
import { runNoStdin } from "./helpers/robust.ts";

/** Every file under dir, recursively, with its bytes. */
function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
  return (readdirSync(dir, { recursive: true }) as string[])
    .map((f) => join(dir, f))
    .filter((p) => statSync(p).isFile())
    .map((p) => ({ path: p, bytes: readFileSync(p) }));
}

describe("secrets and TLS", () => {
  let inst: InitResult;
  let srv: Server;
  const work = tempDir();

  before(async () => {
    inst = await initData();
    // Debug level: the most the server ever logs.
    srv = await startServer(inst.dir, { env: { ESTCA_LOG_LEVEL: "debug" } });
  });
  after(async () => {
    await srv?.stop();
    cleanup(work);
    if (inst) cleanup(join(inst.dir, ".."));
  });

  const sClient = (args: string[]) =>
    runNoStdin("openssl", ["s_client", "-connect", `127.0.0.1:${srv.port}`, "-servername", "localhost", "-CAfile", srv.caPem, "-brief", ...args], 20_000);

  test("TLS 1.0 and 1.1 are refused even by a client willing to use them", async () => {
    for (const v of ["-tls1", "-tls1_1"]) {
      const r = await sClient([v, "-cipher", "DEFAULT:@SECLEVEL=0"]);
      assert.notEqual(r.code, 0, `${v} was accepted: ${r.stdout}`);
      // The server answered the ClientHello with a protocol_version alert: it was asked and said no.
      assert.match(r.stderr, /alert protocol version/, r.stderr);
      console.log(`tls: openssl s_client ${v} -cipher 'DEFAULT:@SECLEVEL=0' -> ${r.stderr.match(/\S*alert protocol version\S*/)?.[0]}`);
    }
  });

  test("TLS 1.2 accepts only forward-secret AEAD suites, and TLS 1.3 works", async () => {
    const list = await run("openssl", ["ciphers", "-tls1_2", "-s", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"]);
    const all = list.stdout.trim().split(":").filter((c) => c && !c.startsWith("TLS_"));
    assert.ok(all.length > 30, `openssl offers only ${all.length} TLS 1.2 suites`);
    const accepted: string[] = [];
    for (let i = 0; i < all.length; i += 8) {
      await Promise.all(
        all.slice(i, i + 8).map(async (c) => {
          const r = await sClient(["-tls1_2", "-cipher", `${c}:@SECLEVEL=0`]);
          if (r.code === 0 && /Ciphersuite: /.test(r.stderr + r.stdout)) accepted.push(c);
        }),
      );
    }
    accepted.sort();
    console.log(`tls: TLS 1.2: ${all.length} suites tried one by one, accepted: ${accepted.join(", ")}`);
    assert.ok(accepted.length > 0, "no TLS 1.2 suite at all");
    for (const c of accepted) assert.match(c, /^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/, `${c} is not forward-secret AEAD`);
    for (const c of ["AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256", "DHE-RSA-AES128-GCM-SHA256"]) {
      assert.ok(!accepted.includes(c), `${c} accepted`);
    }
    const t13 = await sClient(["-tls1_3"]);
    assert.equal(t13.code, 0, t13.stderr);
    assert.match(t13.stderr + t13.stdout, /Protocol version: TLSv1\.3/);
    console.log(`tls: openssl s_client -tls1_3 -> ${(t13.stderr + t13.stdout).match(/Ciphersuite: \S+/)?.[0]}`);
    const csr = await makeCsr(work, "tls13");
    const e = await curl(`${srv.estBase}simpleenroll`, { cacert: srv.caPem, user: `est:${inst.estPassword}`, contentType: "application/pkcs10", body: csr.csrB64, tls: "1.3" });
    assert.equal(e.status, 200, e.text);
  });

  test("server-generated keys never touch the disk", async () => {
    const before = new Set(filesUnder(inst.dir).map((f) => f.path));
    const csr = await makeCsr(work, "keygen", { sans: ["DNS:keygen.example"] });
    const r = await curl(`${srv.estBase}serverkeygen`, { cacert: srv.caPem, user: `est:${inst.estPassword}`, contentType: "application/pkcs10", body: csr.csrB64 });
    if (r.status === 404) {
      assert.fail("/serverkeygen is not enabled on this server");
    }
    assert.equal(r.status, 200, r.text);
    const m = r.text.match(/Content-Type: application\/pkcs8\r?\n(?:[^\r\n]+\r?\n)*\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n--/);
    assert.ok(m, `no application/pkcs8 part in: ${r.text.slice(0, 400)}`);
    const pkcs8 = Buffer.from(m[1].replace(/\s+/g, ""), "base64");
    const key = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
    const scalar = Buffer.from(key.export({ format: "jwk" }).d!, "base64url");
    // Let the server flush whatever it would write.
    await curl(`${srv.httpBase}/readyz`);
    const needles: [string, Buffer][] = [
      ["PKCS#8 DER", pkcs8],
      // Past the first 48 characters, which every P-256 PKCS#8 key shares.
      ["PKCS#8 base64", Buffer.from(pkcs8.toString("base64").slice(48, 96))],
      ["private scalar", scalar],
      ["private scalar hex", Buffer.from(scalar.toString("hex"))],
    ];
    const after = filesUnder(inst.dir);
    for (const f of after) {
      for (const [what, n] of needles) assert.ok(!f.bytes.includes(n), `${f.path} holds the server-generated key (${what})`);
    }
    const added = after.map((f) => f.path).filter((p) => !before.has(p));
    assert.deepEqual(added, [], "serverkeygen created files in the data directory");
    assert.ok(!srv.output().includes(pkcs8.toString("base64").slice(48, 96)), "the key is in the log");
    console.log(`tls: serverkeygen key searched in ${after.length} data-directory files (database, WAL, token, ...): not found`);
  });

  test("the logs hold no PIN, password or private key, and the data directory stays private", async () => {
    const csr = await makeCsr(work, "secrets");
    // Right and wrong passwords, for EST and for the admin API, so there is something to leak.
    await curl(`${srv.estBase}simpleenroll`, { cacert: srv.caPem, user: `est:${inst.estPassword}`, contentType: "application/pkcs10", body: csr.csrB64 });
    await curl(`${srv.estBase}simpleenroll`, { cacert: srv.caPem, user: "est:Wr0ng-Passw0rd-XYZ", contentType: "application/pkcs10", body: csr.csrB64 });
    await curl(`${srv.estBase}simpleenroll`, { cacert: srv.caPem, user: `admin:${inst.adminPassword}`, contentType: "application/pkcs10", body: csr.csrB64 });
    for (const body of [JSON.stringify({ username: "admin", password: inst.adminPassword }), JSON.stringify({ username: "admin", password: "Wr0ng-Admin-XYZ" })]) {
      await curl(`${srv.origin}/api/login`, { cacert: srv.caPem, method: "POST", contentType: "application/json", body });
    }
    await srv.stop();
    const log = srv.output();
    const pin = readFileSync(join(inst.dir, "hsm-pin"), "utf8").trim();
    const soPin = readFileSync(join(inst.dir, "hsm-so-pin"), "utf8").trim();
    const tlsKeyBody = readFileSync(join(inst.dir, "tls", "server.key"), "utf8").split("\n")[1];
    const secrets: [string, string][] = [
      ["token PIN", pin],
      ["token SO PIN", soPin],
      ["EST password", inst.estPassword],
      ["admin password", inst.adminPassword],
      ["wrong EST password", "Wr0ng-Passw0rd-XYZ"],
      ["wrong admin password", "Wr0ng-Admin-XYZ"],
      ["Basic credentials", Buffer.from(`est:${inst.estPassword}`).toString("base64")],
      ["TLS private key", tlsKeyBody],
    ];
    assert.ok(log.split("\n").length > 5, "the server logged nothing to check");
    for (const [what, s] of secrets) assert.ok(!log.includes(s), `the log holds the ${what}`);
    assert.doesNotMatch(log, /PRIVATE KEY/);
    // The database holds hashes, never the passwords themselves.
    for (const f of filesUnder(inst.dir).filter((f) => /estca\.db/.test(f.path))) {
      for (const [what, s] of secrets.slice(2, 6)) assert.ok(!f.bytes.includes(Buffer.from(s)), `${f.path} holds the ${what}`);
    }
    console.log(`tls: ${log.split("\n").length} log lines (debug level) searched for ${secrets.length} secrets: none found`);
    for (const f of readdirSync(inst.dir, { recursive: true }) as string[]) {
      const st = statSync(join(inst.dir, f));
      assert.equal(st.mode & 0o777, st.isDirectory() ? 0o700 : 0o600, `${f} has mode ${(st.mode & 0o777).toString(8)} after the server ran`);
    }
  });
});
