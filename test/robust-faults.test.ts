// Issue 7.4: faults while running and at startup. The token disappears or its PIN stops working;
// the database's disk fills up (a tmpfs of 8 MB, filled with dd: root ignores permission bits,
// but not a full disk); config and database are corrupted before a start.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, type InitResult, type Server, cleanup, curl, estca, initData, makeCsr, run, startServer, tempDir } from "./helpers/harness.ts";

type Csr = Awaited<ReturnType<typeof makeCsr>>;

function enroll(srv: Server, password: string, csr: Csr, op = "simpleenroll") {
  return curl(`${srv.estBase}${op}`, { cacert: srv.caPem, user: `est:${password}`, contentType: "application/pkcs10", body: csr.csrB64 });
}

async function sql(db: string, q: string): Promise<string> {
  const r = await run("sqlite3", ["-readonly", db, q]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

/** Changes the token's user PIN from another process, as an operator with pkcs11-tool would. */
async function changePin(dataDir: string, from: string, to: string): Promise<void> {
  const script = `
    import pkcs11js from "pkcs11js";
    const [from, to] = process.argv.slice(1);
    const p = new pkcs11js.PKCS11();
    p.load("/usr/lib/softhsm/libsofthsm2.so");
    p.C_Initialize();
    const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === "estca");
    const s = p.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
    p.C_Login(s, pkcs11js.CKU_USER, from);
    p.C_SetPIN(s, from, to);
    p.C_Logout(s);
    p.C_CloseSession(s);
    p.C_Finalize();`;
  const r = await run(process.execPath, ["--input-type=module", "-e", script, from, to], { cwd: ROOT, env: { ...process.env, SOFTHSM2_CONF: join(dataDir, "softhsm2.conf") } });
  assert.equal(r.code, 0, r.stderr);
}

function assertUnavailable(r: { status: number; headers: Record<string, string>; text: string }, reason: RegExp, what: string): void {
  assert.equal(r.status, 503, `${what}: ${r.status} ${r.text}`);
  assert.match(r.text, reason, what);
  assert.ok(Number(r.headers["retry-after"]) > 0, `${what}: 503 without Retry-After`);
  assert.match(r.headers["content-type"] ?? "", /^text\/plain/);
}

describe("the token goes away or its PIN stops working while the server runs", () => {
  let inst: InitResult;
  let srv: Server;
  const work = tempDir();
  let csr: Csr;

  before(async () => {
    inst = await initData();
    srv = await startServer(inst.dir);
    csr = await makeCsr(work, "token-fault", { sans: ["DNS:token-fault.example"] });
  });
  after(async () => {
    await srv?.stop();
    cleanup(work);
    if (inst) cleanup(join(inst.dir, ".."));
  });

  test("503 with a reason while the token is gone, service back when it returns, nothing half-written", async () => {
    const db = join(inst.dir, "estca.db");
    const tokens = join(inst.dir, "tokens");
    const before = Number(await sql(db, "SELECT COUNT(*) FROM certificates"));
    let ok = 0;
    assert.equal((await enroll(srv, inst.estPassword, csr)).status, 200);
    ok++;

    renameSync(tokens, tokens + ".away");
    for (const op of ["simpleenroll", "serverkeygen"]) {
      const r = await enroll(srv, inst.estPassword, csr, op);
      assertUnavailable(r, /PKCS#11 token "estca" (is unavailable|failed)/, `${op} without the token`);
    }
    const ready = await curl(`${srv.httpBase}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(ready.text, /token:/);
    // What needs no key still works.
    assert.equal((await curl(`${srv.estBase}cacerts`, { cacert: srv.caPem })).status, 200);

    renameSync(tokens + ".away", tokens);
    const back = await enroll(srv, inst.estPassword, csr);
    assert.equal(back.status, 200, `the token is back: ${back.text}`);
    ok++;
    assert.equal((await curl(`${srv.httpBase}/readyz`)).status, 200);

    // Only the answered enrollments left certificates behind; the refusals are logged with their reason.
    assert.equal(Number(await sql(db, "SELECT COUNT(*) FROM certificates")), before + ok);
    const logged = await sql(db, "SELECT status || ' ' || reason FROM est_requests WHERE status = 503");
    assert.match(logged, /503 PKCS#11 token "estca"/);
  });

  test("a changed PIN: 503 naming the PIN once the session is lost, service back when the PIN is restored", async () => {
    const pin = readFileSync(join(inst.dir, "hsm-pin"), "utf8").trim();
    const tokens = join(inst.dir, "tokens");
    await changePin(inst.dir, pin, "changed-pin-4711");
    // The logged-in session outlives the change...
    assert.equal((await enroll(srv, inst.estPassword, csr)).status, 200, "a live session keeps working after a PIN change");
    // ...until the token is reset under it; then the old PIN no longer logs in.
    renameSync(tokens, tokens + ".away");
    assertUnavailable(await enroll(srv, inst.estPassword, csr), /PKCS#11 token/, "token away");
    renameSync(tokens + ".away", tokens);
    for (let i = 0; i < 2; i++) {
      assertUnavailable(await enroll(srv, inst.estPassword, csr), /refused the PIN \(CKR_PIN_INCORRECT\)/, "wrong PIN");
    }
    const ready = await curl(`${srv.httpBase}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(ready.text, /refused the PIN/);
    await changePin(inst.dir, "changed-pin-4711", pin);
    const back = await enroll(srv, inst.estPassword, csr);
    assert.equal(back.status, 200, back.text);
    assert.doesNotMatch(srv.output(), new RegExp(pin), "the PIN is never logged");
    assert.doesNotMatch(srv.output(), /changed-pin-4711/);
    const integrity = await sql(join(inst.dir, "estca.db"), "PRAGMA integrity_check");
    assert.equal(integrity, "ok");
  });
});

describe("the database's disk fills up while the server runs", () => {
  const mnt = tempDir("estca-tmpfs-");
  let mounted = false;
  let srv: Server | undefined;
  const work = tempDir();

  before(async () => {
    const m = await run("mount", ["-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", mnt]);
    mounted = m.code === 0;
  });
  after(async () => {
    await srv?.stop();
    if (mounted) await run("umount", ["-l", mnt]);
    cleanup(mnt);
    cleanup(work);
  });

  test("503 with a reason while the disk is full, nothing corrupted, service back when space returns", async (t) => {
    if (!mounted) {
      // Needs CAP_SYS_ADMIN for the tmpfs; CI runs as root. Say so loudly rather than pass.
      t.skip("cannot mount a tmpfs here (not root?): the full-disk fault was not tested");
      return;
    }
    const dir = join(mnt, "data");
    const init = await estca(["init", "--data", dir]);
    assert.equal(init.code, 0, init.stderr);
    const password = init.stdout.match(/EST user:\s+\S+\s+password: (\S+)/)![1];
    srv = await startServer(dir);
    const csr = await makeCsr(work, "disk-full", { sans: ["DNS:disk-full.example"] });
    const db = join(dir, "estca.db");
    const answered: string[] = [];
    const okEnroll = async (what: string) => {
      const r = await enroll(srv!, password, csr);
      assert.equal(r.status, 200, `${what}: ${r.text}`);
      answered.push(r.text);
    };
    await okEnroll("before the disk fills");

    const filler = join(mnt, "filler");
    await run("dd", ["if=/dev/zero", `of=${filler}`, "bs=64k"]);
    const df = await run("df", ["-k", "--output=avail", mnt]);
    assert.match(df.stdout, /\n\s*0\s*$/, `the disk is not full: ${df.stdout}`);
    for (const op of ["simpleenroll", "simpleenroll", "serverkeygen"]) {
      const r = await enroll(srv, password, csr, op);
      assertUnavailable(r, /the database cannot be written \(SQLITE_FULL\)/, `${op} on a full disk`);
      assert.doesNotMatch(r.text, /PRIVATE KEY|MII/, "no key or certificate is handed out that the store could not keep");
    }
    const ready = await curl(`${srv.httpBase}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(ready.text, /database:/);

    rmSync(filler);
    await okEnroll("after space returns");
    await okEnroll("and again");
    assert.equal(await srv.stop(), 0, "a clean stop after the fault");
    srv = undefined;
    assert.equal(await sql(db, "PRAGMA integrity_check"), "ok");
    // 3 answered + the listener certificate, and nothing from the refused requests.
    assert.equal(Number(await sql(db, "SELECT COUNT(*) FROM certificates")), answered.length + 1);
    srv = await startServer(dir);
    assert.equal((await curl(`${srv.estBase}cacerts`, { cacert: srv.caPem })).status, 200);
    console.log("faults: full disk (tmpfs filled with dd): 503 SQLITE_FULL while full, 200 after, integrity_check ok");
  });
});

describe("a corrupted config or database stops startup with a clear message and is left as it was", () => {
  let pristine: InitResult;
  const work = tempDir();
  before(async () => {
    pristine = await initData();
  });
  after(() => {
    cleanup(work);
    if (pristine) cleanup(join(pristine.dir, ".."));
  });

  const hash = (p: string) => (existsSync(p) ? createHash("sha256").update(readFileSync(p)).digest("hex") : "missing");

  const cases: [string, (dir: string) => string, RegExp][] = [
    ["config: YAML syntax error", (d) => (writeFileSync(join(d, "config.yaml"), "profiles: [unclosed\n  server: {"), "config.yaml"), /config\.yaml is not valid YAML/],
    ["config: empty file", (d) => (writeFileSync(join(d, "config.yaml"), ""), "config.yaml"), /config\.yaml is empty: restore it from a backup/],
    ["config: binary garbage", (d) => (writeFileSync(join(d, "config.yaml"), Buffer.from([0xff, 0xfe, 0, 1, 2, 0x80, 0x81, 0x0a, 0x3a, 0x3a])), "config.yaml"), /config\.yaml/],
    ["config: truncated in the middle", (d) => { const p = join(d, "config.yaml"); const t = readFileSync(p, "utf8"); writeFileSync(p, t.slice(0, t.indexOf("profiles:") + 30)); return "config.yaml"; }, /config\.yaml/],
    ["config: wrong type", (d) => { const p = join(d, "config.yaml"); writeFileSync(p, readFileSync(p, "utf8").replace(/^server:\n/m, "server: 5\nold_server:\n")); return "config.yaml"; }, /config\.yaml: (server|\(top level\))/],
    ["database: truncated to half", (d) => { const p = join(d, "estca.db"); truncateSync(p, Math.floor(statSync(p).size / 2)); return "estca.db"; }, /estca\.db is (unreadable or corrupted|.*empty|.*incomplete)|holds no active CA root|will not reset it/],
    ["database: zero bytes", (d) => (truncateSync(join(d, "estca.db"), 0), "estca.db"), /estca\.db|database/],
    ["database: a text file", (d) => (writeFileSync(join(d, "estca.db"), "this is not a database\n".repeat(200)), "estca.db"), /unreadable or corrupted .*will not reset it/],
    ["database: a garbage page in the middle", (d) => { const p = join(d, "estca.db"); const b = readFileSync(p); for (let i = 4096 * 2; i < 4096 * 3 && i < b.length; i++) b[i] = (i * 7) & 0xff; writeFileSync(p, b); return "estca.db"; }, /unreadable or corrupted|malformed/],
    ["hsm-pin: wrong PIN in the file", (d) => (writeFileSync(join(d, "hsm-pin"), "000000\n"), "hsm-pin"), /refused the PIN/],
    ["tokens: directory missing", (d) => (rmSync(join(d, "tokens"), { recursive: true }), "softhsm2.conf"), /SoftHSM token .* is missing .*without it the CA key is lost/],
  ];

  for (const [what, corrupt, message] of cases) {
    test(what, async () => {
      const dir = join(work, what.replace(/\W+/g, "-"), "data");
      mkdirSync(join(dir, ".."), { recursive: true });
      cpSync(pristine.dir, dir, { recursive: true });
      const conf = join(dir, "softhsm2.conf");
      writeFileSync(conf, readFileSync(conf, "utf8").replace(pristine.dir, dir));
      const file = corrupt(dir);
      const before = { file: hash(join(dir, file)), db: hash(join(dir, "estca.db")), config: hash(join(dir, "config.yaml")) };
      const r = await estca(["start", "--data", dir, "--host", "127.0.0.1", "--port", "0", "--http-port", "0"]);
      assert.notEqual(r.code, 0, `${what}: estca started anyway: ${r.stdout}`);
      assert.match(r.stderr, /^estca: /, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, `one line, no stack trace: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stdout, /estca is serving|initialized/);
      assert.deepEqual({ file: hash(join(dir, file)), db: hash(join(dir, "estca.db")), config: hash(join(dir, "config.yaml")) }, before, "the failed start changed the data directory");
      console.log(`faults: ${what}: ${r.stderr.trim()}`);
    });
  }
});
