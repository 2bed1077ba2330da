// Issue 6: the throughput features keep the product's promises under concurrency. Many clients
// at once (real curl processes over TLS) each get a distinct certificate that is in the store,
// every request is in the request log, and a server with --workers stops gracefully on SIGTERM.
// No timing assertions: the machine is shared.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type InitResult, type Server, certsFromCertsOnly, cleanup, curl, estca, initData, makeCsr, run, startServer, tempDir } from "./helpers/harness.ts";

const CLIENTS = 24;

async function enrollMany(srv: Server, inst: InitResult, work: string, tag: string): Promise<string[]> {
  const csrs = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => makeCsr(work, `${tag}-${i}`)));
  const answers = await Promise.all(
    csrs.map((c) =>
      curl(`${srv.estBase}simpleenroll`, { method: "POST", user: `est:${inst.estPassword}`, body: c.csrB64, contentType: "application/pkcs10", cacert: srv.caPem }),
    ),
  );
  const serials: string[] = [];
  for (const [i, a] of answers.entries()) {
    assert.equal(a.status, 200, `client ${i}: ${a.text}`);
    const pem = await certsFromCertsOnly(a.body);
    const x = await run("openssl", ["x509", "-noout", "-serial", "-subject"], { input: pem });
    assert.match(x.stdout, new RegExp(`CN ?= ?${tag}-${i}\\b`), "each client gets its own certificate back");
    serials.push(x.stdout.match(/serial=([0-9A-F]+)/)![1].toLowerCase().replace(/^0+/, ""));
  }
  assert.equal(new Set(serials).size, CLIENTS, "serial numbers are distinct");
  return serials;
}

// The tag is searched for: three characters or more, or search would match serial prefixes only.
async function assertInStore(inst: InitResult, serials: string[], tag: string): Promise<void> {
  const list = await estca(["list", "--json", "--search", tag, "--limit", "500", "--data", inst.dir]);
  assert.equal(list.code, 0, list.stderr);
  const stored = new Set((JSON.parse(list.stdout) as { serial: string }[]).map((c) => c.serial.toLowerCase().replace(/^0+/, "")));
  for (const s of serials) assert.ok(stored.has(s), `certificate ${s} was answered but is not in the store`);
  const log = await estca(["requests", "--json", "--limit", "500", "--data", inst.dir]);
  assert.equal(log.code, 0, log.stderr);
  const logged = (JSON.parse(log.stdout) as { serial: string | null; status: number }[]).filter((e) => e.serial && serials.includes(e.serial.toLowerCase().replace(/^0+/, "")));
  assert.equal(logged.length, CLIENTS, "every enrollment is in the request log");
}

describe("concurrent enrollments, one process (group commit)", () => {
  let inst: InitResult;
  let srv: Server;
  const work = tempDir();
  before(async () => {
    inst = await initData();
    srv = await startServer(inst.dir);
  });
  after(async () => {
    await srv?.stop();
    cleanup(work);
    cleanup(join(inst.dir, ".."));
  });

  test(`${CLIENTS} clients at once each get a durable, distinct certificate`, async () => {
    const serials = await enrollMany(srv, inst, work, "group");
    assert.equal(await srv.stop(), 0);
    // After a clean stop, every certificate answered is in the store file.
    await assertInStore(inst, serials, "group");
  });
});

describe("estca start --workers 2", () => {
  let inst: InitResult;
  let srv: Server;
  const work = tempDir();
  before(async () => {
    inst = await initData();
    srv = await startServer(inst.dir, { args: ["--workers", "2"] });
  });
  after(async () => {
    await srv?.stop();
    cleanup(work);
    cleanup(join(inst.dir, ".."));
  });

  test("serves from two processes on the same ports", async () => {
    assert.match(srv.output(), /estca is serving \(2 workers\)/);
    const kids = await run("ps", ["--ppid", String(srv.proc.pid), "-o", "pid="]);
    assert.equal(kids.stdout.trim().split(/\s+/).filter(Boolean).length, 2, "two worker processes");
    const cacerts = await curl(`${srv.estBase}cacerts`, { cacert: srv.caPem });
    assert.equal(cacerts.status, 200);
    const health = await curl(`${srv.httpBase}/healthz`);
    assert.equal(health.status, 200);
  });

  test(`${CLIENTS} clients at once each get a durable, distinct certificate`, async () => {
    const serials = await enrollMany(srv, inst, work, "workers");
    await assertInStore(inst, serials, "workers");
  });

  test("SIGTERM stops every worker gracefully", async () => {
    const kids = (await run("ps", ["--ppid", String(srv.proc.pid), "-o", "pid="])).stdout.trim().split(/\s+/).filter(Boolean);
    assert.equal(await srv.stop("SIGTERM"), 0);
    for (const pid of kids) {
      let alive = true;
      try {
        process.kill(Number(pid), 0);
      } catch {
        alive = false;
      }
      assert.equal(alive, false, `worker ${pid} outlived the primary`);
    }
    assert.ok(readFileSync(join(inst.dir, "estca.db")).length > 0);
  });
});
