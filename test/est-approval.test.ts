// Issue 3: manual approval end to end: 202 + Retry-After, polling, estca approve / reject /
// pending, with curl and with strongSwan's pki polling on its own.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { cleanup, curl, estca, makeCsr, run, runBinary, tempDir } from "./helpers/harness.ts";
import { type EstFixture, estFixture, requestLog, saveCert, x509Csr } from "./helpers/est.ts";
import { fullCmcRequest } from "./helpers/cmc-client.ts";

const OPS = "ops:ops-pass-1234567";

interface Pending {
  id: number;
  profile: string;
  requester: string;
  subject: string;
}

describe("manual approval", () => {
  let f: EstFixture;
  const work = tempDir();

  before(async () => {
    f = await estFixture((c) => {
      c.server.retryAfterSeconds = 2;
    });
    const add = await estca(["user", "add", "ops", "--password-stdin", "--label", "*", "--data", f.inst.dir], { input: "ops-pass-1234567\n" });
    assert.equal(add.code, 0, add.stderr);
  });
  after(async () => {
    await f?.stop();
    cleanup(work);
  });

  const pending = async (): Promise<Pending[]> => {
    const r = await estca(["pending", "--json", "--data", f.inst.dir]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };

  test("202 with Retry-After, the same request again 202, approve, then 200 with the certificate", async () => {
    const csr = await makeCsr(work, "held", { sans: ["DNS:held.example"] });
    const post = (tls: "1.2" | "1.3") => curl(`${f.srv.estBase}manual/simpleenroll`, { cacert: f.srv.caPem, tls, user: OPS, contentType: "application/pkcs10", body: csr.csrB64 });
    const first = await post("1.2");
    assert.equal(first.status, 202, first.text);
    assert.ok(first.rawHeaders.includes("\r\nRetry-After: 2\r\n"), first.rawHeaders);
    const id = Number(first.text.match(/request (\d+) is waiting for approval/)![1]);
    const again = await post("1.3");
    assert.equal(again.status, 202);
    assert.match(again.text, new RegExp(`request ${id} is waiting`), "the same request, not a new one");

    const list = await pending();
    assert.equal(list.filter((p) => p.subject === "CN=held").length, 1);
    const item = list.find((p) => p.id === id)!;
    assert.equal(item.profile, "manual");
    assert.equal(item.requester, "user:ops");
    const text = await estca(["pending", "--data", f.inst.dir]);
    assert.match(text.stdout, new RegExp(`^${id}\\s+\\S+\\s+manual\\s+user:ops\\s+CN=held$`, "m"));

    const ok = await estca(["approve", String(id), "--data", f.inst.dir]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`request ${id} \\(CN=held\\) approved`));
    const issued = await post("1.3");
    assert.equal(issued.status, 200, issued.text);
    assert.equal(issued.headers["content-type"], "application/pkcs7-mime; smime-type=certs-only");
    const out = join(work, "held.pem");
    const { serial } = await saveCert(issued, out);
    const v = await run("openssl", ["verify", "-CAfile", f.srv.caPem, out]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.ok(!(await pending()).some((p) => p.id === id), "no longer pending");
    const log = await requestLog(f.inst.dir, 5);
    assert.equal(log[0].serial, serial);
    assert.equal(log.filter((e) => e.status === 202 && e.label === "manual").length >= 2, true);
    assert.equal((await estca(["approve", String(id), "--data", f.inst.dir])).code, 1, "deciding twice is refused");
  });

  test("reject with a reason: the client gets 403 with that reason", async () => {
    const csr = await makeCsr(work, "refused");
    const post = () => curl(`${f.srv.estBase}manual/simpleenroll`, { cacert: f.srv.caPem, user: OPS, contentType: "application/pkcs10", body: csr.csrB64 });
    const first = await post();
    assert.equal(first.status, 202);
    const id = Number(first.text.match(/request (\d+)/)![1]);
    const r = await estca(["reject", String(id), "--reason", "not on the device inventory", "--data", f.inst.dir]);
    assert.equal(r.code, 0, r.stderr);
    const denied = await post();
    assert.equal(denied.status, 403);
    assert.match(denied.text, new RegExp(`request ${id} was rejected by cli:\\S+: not on the device inventory`));
    const log = (await requestLog(f.inst.dir, 1))[0];
    assert.match(log.reason ?? "", /not on the device inventory/);
    const noReason = await estca(["reject", String(id), "--data", f.inst.dir]);
    assert.notEqual(noReason.code, 0);
  });

  test("serverkeygen and fullcmc are held too; the key is generated when the approved request is fetched", async () => {
    const csr = await makeCsr(work, "held-keygen", { key: "rsa-2048" });
    const post = () => curl(`${f.srv.estBase}manual/serverkeygen`, { cacert: f.srv.caPem, user: OPS, contentType: "application/pkcs10", body: csr.csrB64 });
    const first = await post();
    assert.equal(first.status, 202, first.text);
    assert.ok(first.rawHeaders.includes("\r\nRetry-After: 2\r\n"));
    const id = Number(first.text.match(/request (\d+)/)![1]);
    assert.equal((await estca(["approve", String(id), "--data", f.inst.dir])).code, 0);
    const done = await post();
    assert.equal(done.status, 200, done.text);
    assert.match(done.headers["content-type"], /^multipart\/mixed; boundary=/);
    assert.match(done.text, /Content-Type: application\/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\n/);

    const cmcCsr = await x509Csr({ subject: "CN=held-cmc" });
    const body = (await fullCmcRequest(cmcCsr)).toString("base64");
    const postCmc = () => curl(`${f.srv.estBase}manual/fullcmc`, { cacert: f.srv.caPem, user: OPS, contentType: "application/pkcs7-mime; smime-type=CMC-request", body });
    const held = await postCmc();
    assert.equal(held.status, 202, held.text);
    const cmcId = Number(held.text.match(/request (\d+)/)![1]);
    assert.equal((await estca(["approve", String(cmcId), "--data", f.inst.dir])).code, 0);
    const cmcDone = await postCmc();
    assert.equal(cmcDone.status, 200, cmcDone.text);
    assert.equal(cmcDone.headers["content-type"], "application/pkcs7-mime; smime-type=CMC-response");
    const certs = await runBinary("openssl", ["pkcs7", "-inform", "DER", "-print_certs"], Buffer.from(cmcDone.text, "base64"));
    assert.match(certs.stdout.toString(), /subject=CN ?= ?held-cmc/);
  });

  test("strongSwan pki --est polls on its own after a 202 and gets the certificate once approved", async () => {
    const csr = await makeCsr(work, "sw-held", { key: "rsa-2048" });
    // strongSwan cannot send a label, so a second server holds requests on its default profile.
    const g = await estFixture((c) => {
      c.server.retryAfterSeconds = 1;
      c.profiles.default.approval = "manual";
    });
    try {
      const child = spawn("pki", ["--est", "--url", g.srv.origin, "--cacert", g.srv.caPem, "--in", csr.csrFile, "--userpass", g.userpass, "--outform", "pem", "--interval", "1", "--maxpolltime", "120"], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d));
      child.stderr.on("data", (d: Buffer) => (err += d));
      const exited = new Promise<number | null>((res) => child.once("exit", (c) => res(c)));
      let id: number | undefined;
      for (let i = 0; i < 120 && id === undefined; i++) {
        const r = await estca(["pending", "--json", "--data", g.inst.dir]);
        id = (JSON.parse(r.stdout) as Pending[]).find((p) => p.subject === "CN=sw-held")?.id;
        if (id === undefined) await new Promise((res) => setTimeout(res, 500));
      }
      assert.ok(id !== undefined, `strongSwan's request was never held: ${err}`);
      assert.equal((await estca(["approve", String(id), "--data", g.inst.dir])).code, 0);
      const code = await exited;
      assert.equal(code, 0, err);
      assert.match(err, /EST request pending, polling/);
      assert.match(out, /BEGIN CERTIFICATE/);
      const log = await requestLog(g.inst.dir, 10);
      assert.ok(log.some((e) => e.status === 202));
      assert.equal(log[0].status, 200);
    } finally {
      await g.stop();
    }
  });
});
