// Issue 7.3: crashes lose nothing. estca runs as a child process under parallel enrollment and is
// killed with SIGKILL at a random moment, then restarted, several times. Every certificate whose
// 200 reached a client must be in the store, byte for byte, and verify; no serial twice; the
// database passes integrity_check; the CA key is still in the token.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type InitResult, type Server, cleanup, estca, initData, makeCsr, run, startServer, tempDir } from "./helpers/harness.ts";
import { certsOfCertsOnly, prng, request, sleep } from "./helpers/robust.ts";

const CYCLES = 6;
const PARALLEL = 6;

describe("crashes lose nothing", () => {
  let inst: InitResult;
  const work = tempDir();
  let csrs: string[] = [];

  before(async () => {
    inst = await initData();
    csrs = (await Promise.all(Array.from({ length: 8 }, (_, i) => makeCsr(work, `crash-${i}`, { sans: [`DNS:crash-${i}.example`] })))).map((c) => c.csrB64);
  });
  after(() => {
    cleanup(work);
    if (inst) cleanup(join(inst.dir, ".."));
  });

  test(`kill -9 under parallel enrollment, ${CYCLES} times`, async () => {
    const rnd = prng(9);
    const received: { cycle: number; der: Buffer }[] = [];
    const auth = "Basic " + Buffer.from(`est:${inst.estPassword}`).toString("base64");
    let attempted = 0;
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const srv: Server = await startServer(inst.dir);
      assert.doesNotMatch(srv.output(), /"level":(50|60)/, `cycle ${cycle}: the server logged an error while starting`);
      const ca = readFileSync(srv.caPem, "utf8");
      const agent = new https.Agent({ keepAlive: true, maxSockets: PARALLEL });
      let killed = false;
      const loop = async (w: number) => {
        for (let i = 0; !killed; i++) {
          attempted++;
          try {
            const r = await request(srv.origin, {
              path: "/.well-known/est/simpleenroll",
              ca,
              agent,
              headers: { Authorization: auth, "Content-Type": "application/pkcs10" },
              body: csrs[(w + i) % csrs.length],
            });
            if (r.status === 200) received.push({ cycle, der: certsOfCertsOnly(r.text)[0] });
            else assert.fail(`cycle ${cycle}: enrollment answered ${r.status}: ${r.text}`);
          } catch (e) {
            if (!killed) throw e;
          }
        }
      };
      const loops = Array.from({ length: PARALLEL }, (_, w) => loop(w));
      // Warm up (the first requests pay for scrypt and TLS), then kill at a random moment.
      for (let t = 0; t < 100 && !received.some((c) => c.cycle === cycle); t++) await sleep(100);
      await sleep(200 + Math.floor(rnd() * 2000));
      killed = true;
      const exit = await srv.stop("SIGKILL");
      await Promise.allSettled(loops);
      agent.destroy();
      assert.equal(srv.proc.signalCode, "SIGKILL", `cycle ${cycle}: exit ${exit}`);
    }
    console.log(`crash: ${CYCLES} kill -9 cycles; ${attempted} enrollments attempted, ${received.length} answered 200`);
    assert.ok(received.length >= CYCLES * 5, `too few certificates (${received.length}) to prove anything`);

    // After the last crash the server must start cleanly again, and still sign with the token key.
    const srv = await startServer(inst.dir);
    try {
      assert.doesNotMatch(srv.output(), /"level":(50|60)/);
      const r = await request(srv.origin, {
        path: "/.well-known/est/simpleenroll",
        ca: readFileSync(srv.caPem, "utf8"),
        agent: false,
        headers: { Authorization: auth, "Content-Type": "application/pkcs10" },
        body: csrs[0],
      });
      assert.equal(r.status, 200, r.text);
      received.push({ cycle: CYCLES + 1, der: certsOfCertsOnly(r.text)[0] });
    } finally {
      assert.equal(await srv.stop(), 0);
    }

    // Every received certificate is in the store, byte for byte, and appears once.
    const serials = received.map((c) => new X509Certificate(c.der).serialNumber.toLowerCase().replace(/^0+/, ""));
    assert.equal(new Set(serials).size, serials.length, "a serial number was handed out twice");
    const db = join(inst.dir, "estca.db");
    const rows = JSON.parse((await run("sqlite3", ["-json", "-readonly", db, "SELECT serial, hex(der) AS der FROM certificates"])).stdout || "[]") as { serial: string; der: string }[];
    const stored = new Map(rows.map((r) => [r.serial, r.der.toLowerCase()]));
    const listed = JSON.parse((await estca(["list", "--json", "--limit", "1000000", "--data", inst.dir])).stdout) as { serial: string }[];
    const listedSet = new Set(listed.map((c) => c.serial));
    received.forEach((c, i) => {
      assert.equal(stored.get(serials[i]), c.der.toString("hex"), `certificate ${serials[i]} (cycle ${c.cycle}) reached the client but is not in the store`);
      assert.ok(listedSet.has(serials[i]), `estca list does not show ${serials[i]}`);
    });
    const dup = (await run("sqlite3", ["-readonly", db, "SELECT serial FROM certificates GROUP BY serial HAVING COUNT(*) > 1"])).stdout.trim();
    assert.equal(dup, "", "duplicate serials in the store");
    const integrity = await run("sqlite3", ["-readonly", db, "PRAGMA integrity_check"]);
    assert.equal(integrity.stdout.trim(), "ok", integrity.stdout + integrity.stderr);
    const fk = await run("sqlite3", ["-readonly", db, "PRAGMA foreign_key_check"]);
    assert.equal(fk.stdout.trim(), "", fk.stdout);

    // Every received certificate verifies against the trust anchors.
    let verified = 0;
    for (let i = 0; i < received.length; i += 200) {
      const files = received.slice(i, i + 200).map((c, j) => {
        const f = join(work, `got-${i + j}.pem`);
        writeFileSync(f, `-----BEGIN CERTIFICATE-----\n${c.der.toString("base64").replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE-----\n`);
        return f;
      });
      const v = await run("openssl", ["verify", "-CAfile", join(inst.dir, "ca.pem"), ...files]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
      verified += (v.stdout.match(/: OK$/gm) ?? []).length;
    }
    assert.equal(verified, received.length);

    // The CA key is still in the token: a separate process opens it and reads its attributes.
    const script = `
      import { openInstance } from ${JSON.stringify(join(import.meta.dirname, "..", "src", "instance", "open.ts"))};
      const i = openInstance(process.argv[1]);
      const ref = i.km.findKey(i.ca.issuer.key.ref.label);
      console.log(JSON.stringify({ found: !!ref, ...i.km.protection(i.ca.issuer.key.ref), integrity: i.store.integrityCheck() }));
      i.close();`;
    const k = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, inst.dir]);
    assert.equal(k.code, 0, k.stderr);
    const key = JSON.parse(k.stdout.trim());
    assert.equal(key.found, true);
    assert.equal(key.sensitive, true);
    assert.equal(key.extractable, false);
    assert.equal(key.integrity, "ok");
    console.log(`crash: ${received.length} certificates checked after the crashes: all in the store, all verify, no serial twice, integrity_check ok, CA key in the token`);
  });
});
