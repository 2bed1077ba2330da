// Issue 2: the appliance core, driven through the real CLI, a real SoftHSM token, SQLite and openssl.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, statSync, writeFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type InitResult, type Server, cleanup, curl, certsFromCertsOnly, estca, initData, makeCsr, run, startServer, tempDir } from "./helpers/harness.ts";

function fileHash(p: string): string {
  return createHash("sha256").update(readFileSync(p)).digest("hex");
}

/** An expected failure: non-zero exit, one line on stderr that starts with "estca:", no stack trace. */
function assertCleanFailure(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.notEqual(r.code, 0, "exit status must be non-zero");
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace for an expected error");
  assert.equal(r.stderr.trim().split("\n").length, 1, `one line, got: ${r.stderr}`);
  assert.match(r.stderr, /^estca: /);
}

describe("estca core", () => {
  let inst: InitResult;
  const work = tempDir();

  before(async () => {
    inst = await initData(["--dns", "est.example.test", "--ip", "10.9.8.7"]);
  });
  after(() => {
    cleanup(work);
    cleanup(join(inst.dir, ".."));
  });

  test("init creates a private data directory and a second init changes nothing", async () => {
    for (const f of readdirSync(inst.dir, { recursive: true }) as string[]) {
      const st = statSync(join(inst.dir, f));
      assert.equal(st.mode & 0o777, st.isDirectory() ? 0o700 : 0o600, `${f} has mode ${(st.mode & 0o777).toString(8)}`);
    }
    const before = { config: fileHash(join(inst.dir, "config.yaml")), ca: fileHash(join(inst.dir, "ca.pem")), db: fileHash(join(inst.dir, "estca.db")) };
    const r = await estca(["init", "--data", inst.dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /already initialized; nothing changed/);
    assert.doesNotMatch(r.stdout, /password/);
    assert.deepEqual({ config: fileHash(join(inst.dir, "config.yaml")), ca: fileHash(join(inst.dir, "ca.pem")), db: fileHash(join(inst.dir, "estca.db")) }, before);
  });

  for (const key of ["ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "ed25519"] as const) {
    test(`estca issue signs an openssl ${key} CSR that openssl verify accepts`, async () => {
      const csr = await makeCsr(work, `dev-${key}`, { key, sans: [`DNS:dev-${key}.example,IP:192.0.2.1`] });
      const out = join(work, `dev-${key}.pem`);
      const r = await estca(["issue", "--data", inst.dir, "--csr", csr.csrFile, "--out", out]);
      assert.equal(r.code, 0, r.stderr);
      const v = await run("openssl", ["verify", "-CAfile", join(inst.dir, "ca.pem"), out]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
      assert.match(v.stdout, /: OK/);
      const text = (await run("openssl", ["x509", "-in", out, "-noout", "-text"])).stdout;
      assert.match(text, /CA:FALSE/);
      assert.match(text, /DNS:dev-.*\.example/);
      assert.match(text, /IP Address:192\.0\.2\.1/);
      assert.match(text, /Subject Key Identifier/);
      assert.match(text, /Authority Key Identifier/);
      assert.match(text, /TLS Web Client Authentication/);
      assert.match(text, /CRL Distribution Points/);
      assert.match(text, /OCSP - URI:/);
      const serial = (await run("openssl", ["x509", "-in", out, "-noout", "-serial"])).stdout.trim().split("=")[1];
      assert.ok(serial.length >= 16, `serial ${serial} carries at least 64 bits`);
      // A DER CSR works as well as PEM.
      const derFile = join(work, `dev-${key}.der`);
      writeFileSync(derFile, csr.csrDer);
      const r2 = await estca(["issue", "--data", inst.dir, "--csr", derFile, "--profile", "server"]);
      assert.equal(r2.code, 0, r2.stderr);
      assert.match(r2.stdout, /BEGIN CERTIFICATE/);
    });
  }

  test("the CA private key in the token is sensitive and not extractable", async () => {
    // A separate process opens the real token and reads the key's attributes through PKCS#11.
    const script = `
      import { openInstance } from ${JSON.stringify(join(import.meta.dirname, "..", "src", "instance", "open.ts"))};
      const i = openInstance(process.argv[1]);
      console.log(JSON.stringify(i.km.protection(i.ca.issuer.key.ref)));
      i.close();`;
    const r = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, inst.dir]);
    assert.equal(r.code, 0, r.stderr);
    const p = JSON.parse(r.stdout.trim());
    assert.equal(p.sensitive, true);
    assert.equal(p.extractable, false);
    assert.equal(p.neverExtractable, true);
    // And nothing in the data directory holds it.
    for (const f of readdirSync(inst.dir, { recursive: true }) as string[]) {
      if (f.startsWith("tokens") || f === "tls/server.key" || statSync(join(inst.dir, f)).isDirectory()) continue;
      assert.doesNotMatch(readFileSync(join(inst.dir, f), "latin1"), /PRIVATE KEY/, `${f} holds a private key`);
    }
  });

  describe("running server", () => {
    let srv: Server;
    before(async () => {
      srv = await startServer(inst.dir);
    });
    after(async () => {
      await srv?.stop();
    });

    test("the TLS listener's chain verifies against ca.pem for localhost and 127.0.0.1", async () => {
      for (const [flag, value] of [
        ["-verify_hostname", "localhost"],
        ["-verify_ip", "127.0.0.1"],
        ["-verify_hostname", "est.example.test"],
        ["-verify_ip", "10.9.8.7"],
      ]) {
        const r = await run("openssl", ["s_client", "-connect", `127.0.0.1:${srv.port}`, "-CAfile", srv.caPem, flag, value, "-verify_return_error", "-brief"], { input: "" });
        assert.match(r.stderr + r.stdout, /Verification: OK/, `${flag} ${value}: ${r.stderr}`);
      }
      const bad = await run("openssl", ["s_client", "-connect", `127.0.0.1:${srv.port}`, "-CAfile", srv.caPem, "-verify_hostname", "not-this-host.example", "-verify_return_error", "-brief"], { input: "" });
      assert.doesNotMatch(bad.stderr + bad.stdout, /Verification: OK/);
    });

    test("issued certificates survive a restart", async () => {
      const csr = await makeCsr(work, "survivor", { sans: ["DNS:survivor.example"] });
      const r = await curl(`${srv.estBase}simpleenroll`, { cacert: srv.caPem, user: `est:${inst.estPassword}`, contentType: "application/pkcs10", body: csr.csrB64 });
      assert.equal(r.status, 200, r.text);
      const pem = await certsFromCertsOnly(r.body);
      const pemFile = join(work, "survivor.pem");
      writeFileSync(pemFile, pem);
      const serial = (await run("openssl", ["x509", "-in", pemFile, "-noout", "-serial"])).stdout.trim().split("=")[1].toLowerCase();
      const ext = (await run("openssl", ["x509", "-in", pemFile, "-noout", "-ext", "crlDistributionPoints,authorityInfoAccess"])).stdout;
      assert.match(ext, new RegExp(`URI:http://[^/]+:${srv.httpPort}/crl/1\\.crl`), "the CRL URL names the port actually bound");
      assert.match(ext, new RegExp(`OCSP - URI:http://[^/]+:${srv.httpPort}/ocsp`));

      assert.equal(await srv.stop("SIGTERM"), 0, "graceful stop exits 0");
      assert.match(srv.output(), /estca stopped/);
      const show = await estca(["show", serial, "--data", inst.dir, "--json"]);
      assert.equal(show.code, 0, show.stderr);
      assert.equal(JSON.parse(show.stdout).subject, "CN=survivor");
      srv = await startServer(inst.dir);
      const list = await estca(["list", "--json", "--data", inst.dir]);
      assert.ok(JSON.parse(list.stdout).some((c: { serial: string }) => c.serial === serial));
      const again = await curl(`${srv.estBase}cacerts`, { cacert: srv.caPem });
      assert.equal(again.status, 200);
    });

    test("a port already in use stops start with one clear line", async () => {
      const r = await estca(["start", "--data", inst.dir, "--host", "127.0.0.1", "--port", String(srv.port), "--http-port", "0"]);
      assertCleanFailure(r, /port \d+ on 127\.0\.0\.1 is already in use/);
    });
  });

  test("status and list report the CA and its certificates", async () => {
    const s = await estca(["status", "--data", inst.dir, "--json"]);
    assert.equal(s.code, 0, s.stderr);
    const j = JSON.parse(s.stdout);
    assert.equal(j.ca.subject, "CN=estca Root CA");
    assert.equal(j.token.tokenLabel, "estca");
    assert.ok(j.certificates.issued >= 5);
    const t = await estca(["status", "--data", inst.dir]);
    assert.match(t.stdout, /key:\s+ec-p256, label estca-root-1, in token "estca"/);
  });

  test("users can be added, listed and removed", async () => {
    const add = await estca(["user", "add", "alice", "--password-stdin", "--label", "server", "--data", inst.dir], { input: "s3cret-pass\n" });
    assert.equal(add.code, 0, add.stderr);
    const dup = await estca(["user", "add", "alice", "--data", inst.dir]);
    assertCleanFailure(dup, /already exists/);
    const gen = await estca(["user", "add", "bob", "--data", inst.dir]);
    assert.match(gen.stdout, /password: \S{16,}/);
    const list = await estca(["user", "list", "--json", "--data", inst.dir]);
    const users = JSON.parse(list.stdout) as { name: string; labels: string[] }[];
    assert.deepEqual(users.find((u) => u.name === "alice")?.labels, ["server"]);
    const badLabel = await estca(["user", "add", "carol", "--label", "nosuch", "--data", inst.dir]);
    assertCleanFailure(badLabel, /no profile of that name/);
    assert.equal((await estca(["user", "remove", "bob", "--data", inst.dir])).code, 0);
    assertCleanFailure(await estca(["user", "remove", "bob", "--data", inst.dir]), /no user "bob"/);
  });

  test("every command has --help and flags come from ESTCA_* variables", async () => {
    for (const cmd of [["init"], ["start"], ["user", "add"], ["user", "list"], ["user", "remove"], ["issue"], ["list"], ["show"], ["status"], ["pending"], ["approve"], ["reject"], ["requests"]]) {
      const r = await estca([...cmd, "--help"]);
      assert.equal(r.code, 0, `${cmd.join(" ")} --help: ${r.stderr}`);
      assert.match(r.stdout, /Usage: estca/);
    }
    const r = await estca(["list", "--json"], { env: { ESTCA_DATA: inst.dir } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(JSON.parse(r.stdout).length >= 1);
  });
});

describe("another PKCS#11 token", () => {
  test("an existing token of any module can hold the CA key instead of a project-local one", async () => {
    const work = tempDir();
    try {
      const tokens = join(work, "tokens");
      await run("mkdir", ["-p", tokens]);
      const conf = join(work, "softhsm2.conf");
      writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\n`);
      const env = { ...process.env, SOFTHSM2_CONF: conf };
      const t = await run("softhsm2-util", ["--init-token", "--free", "--label", "site-hsm", "--so-pin", "11112222", "--pin", "33334444"], { env });
      assert.equal(t.code, 0, t.stderr);
      const dir = join(work, "data");
      const noPin = await estca(["init", "--data", dir, "--pkcs11-module", "/usr/lib/softhsm/libsofthsm2.so", "--token-label", "site-hsm"], { env: { SOFTHSM2_CONF: conf } });
      assertCleanFailure(noPin, /needs the token's user PIN in ESTCA_HSM_PIN/);
      const r = await estca(["init", "--data", dir, "--pkcs11-module", "/usr/lib/softhsm/libsofthsm2.so", "--token-label", "site-hsm"], { env: { SOFTHSM2_CONF: conf, ESTCA_HSM_PIN: "33334444" } });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(readdirSync(dir).filter((f) => /pin|tokens|softhsm/.test(f)), [], "nothing of the token is kept in the data directory");
      const s = await estca(["status", "--json", "--data", dir], { env: { SOFTHSM2_CONF: conf, ESTCA_HSM_PIN: "33334444" } });
      assert.equal(s.code, 0, s.stderr);
      assert.equal(JSON.parse(s.stdout).token.tokenLabel, "site-hsm");
      assertCleanFailure(await estca(["status", "--data", dir], { env: { SOFTHSM2_CONF: conf, ESTCA_HSM_PIN: "" } }), /PIN is neither in ESTCA_HSM_PIN nor in/);
    } finally {
      cleanup(work);
    }
  });
});

describe("clear errors", () => {
  const work = tempDir();
  after(() => cleanup(work));

  test("a bad flag value is a usage line, not a stack trace", async () => {
    const r = await estca(["start", "--data", join(work, "never"), "--port", "abc"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /argument 'abc' is invalid\. abc is not a port number/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test("a missing data directory", async () => {
    assertCleanFailure(await estca(["status", "--data", join(work, "nope")]), /does not exist: run `estca init/);
    assertCleanFailure(await estca(["list", "--data", join(work, "nope")]), /not an initialized estca data directory/);
  });

  test("a non-empty directory that is not estca's", async () => {
    const d = join(work, "other");
    await run("mkdir", ["-p", d]);
    writeFileSync(join(d, "something.txt"), "x");
    assertCleanFailure(await estca(["init", "--data", d]), /is not empty and holds no config\.yaml/);
  });

  test("a wrong PIN, a missing SoftHSM library, a corrupted database and config", async () => {
    const inst = await initData();
    try {
      assertCleanFailure(await estca(["status", "--data", inst.dir], { env: { ESTCA_HSM_PIN: "000000" } }), /refused the PIN .*CKR_PIN_INCORRECT/);

      const cfgPath = join(inst.dir, "config.yaml");
      const cfg = readFileSync(cfgPath, "utf8");
      writeFileSync(cfgPath, cfg.replace("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/softhsm/nonexistent-libsofthsm2.so"));
      assertCleanFailure(await estca(["status", "--data", inst.dir]), /not found: install it with `apt-get install -y softhsm2`/);

      writeFileSync(cfgPath, cfg.replace("    validityDays: 365\n", "    validityDays: -4\n"));
      assertCleanFailure(await estca(["status", "--data", inst.dir]), /config\.yaml: profiles\.default\.validityDays/);
      writeFileSync(cfgPath, cfg + "\nbogus: 1\n");
      assertCleanFailure(await estca(["status", "--data", inst.dir]), /unknown key bogus/);
      writeFileSync(cfgPath, cfg);

      const db = join(inst.dir, "estca.db");
      const bytes = readFileSync(db);
      bytes.fill(0x41, 0, 100);
      writeFileSync(db, bytes);
      assertCleanFailure(await estca(["status", "--data", inst.dir]), /unreadable or corrupted .*estca will not reset it/);
      assertCleanFailure(await estca(["start", "--data", inst.dir, "--port", "0", "--http-port", "0"]), /unreadable or corrupted/);
    } finally {
      cleanup(join(inst.dir, ".."));
    }
  });

  test("a malformed CSR given to estca issue", async () => {
    const inst = await initData();
    try {
      const f = join(work, "bad.csr");
      writeFileSync(f, "-----BEGIN CERTIFICATE REQUEST-----\nMIIBfoo=\n-----END CERTIFICATE REQUEST-----\n");
      assertCleanFailure(await estca(["issue", "--data", inst.dir, "--csr", f]), /not a PKCS#10 certification request/);
      writeFileSync(f, Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]));
      assertCleanFailure(await estca(["issue", "--data", inst.dir, "--csr", f]), /not a PKCS#10 certification request/);
      assertCleanFailure(await estca(["issue", "--data", inst.dir, "--csr", join(work, "missing.csr")]), /cannot read --csr .*no such file/);
      const good = await makeCsr(work, "wrongprofile");
      assertCleanFailure(await estca(["issue", "--data", inst.dir, "--csr", good.csrFile, "--profile", "nosuch"]), /unknown label "nosuch"/);
    } finally {
      cleanup(join(inst.dir, ".."));
    }
  });

});
