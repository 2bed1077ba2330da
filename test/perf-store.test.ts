// Issue 6: the store's fast paths keep the store's promises. Group commit must not answer before
// a write is durable, must isolate a failing write, and the request log must still be complete.
// Real SQLite files only; no timing assertions (the machine is shared).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import Database from "better-sqlite3";
import { type CertQuery, type CertRecord, Store } from "../src/store/index.ts";
import { EXPIRING_WINDOW_MS } from "../src/store/certificates.ts";
import { cleanup, tempDir } from "./helpers/harness.ts";

function certRow(serial: string, over: Record<string, unknown> = {}) {
  const now = Date.now();
  return {
    serial,
    subject: `CN=${serial}`,
    sans: [`dns:${serial}.example`],
    notBefore: now - 1000,
    notAfter: now + 86400_000,
    issuer: "CN=test CA",
    issuerKey: "00",
    profile: "default",
    requester: "user:test",
    spkiSha256: serial.padEnd(64, "0"),
    der: Buffer.from([0x30, 0x00]),
    createdAt: now,
    kind: "ee",
    ...over,
  };
}

describe("group commit", () => {
  const dir = tempDir();
  after(() => cleanup(dir));

  test("each concurrent write resolves only once another connection can read it", async () => {
    const path = join(dir, "a.db");
    const store = Store.open(path, { create: true });
    const other = new Database(path, { readonly: true });
    try {
      const seen: boolean[] = [];
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => {
          const serial = `4a${i.toString(16).padStart(4, "0")}`;
          return store.commits
            .run(() => store.certs.insert(certRow(serial)))
            .then((ok) => {
              assert.equal(ok, true);
              // A second connection sees only committed data: resolved means committed.
              seen.push(other.prepare("SELECT 1 FROM certificates WHERE serial = ?").get(serial) !== undefined);
            });
        }),
      );
      assert.equal(seen.length, 40);
      assert.ok(seen.every(Boolean), "a write was reported before it was committed");
    } finally {
      other.close();
      store.close();
    }
  });

  test("a write that throws is rolled back alone and its caller hears the error", async () => {
    const path = join(dir, "b.db");
    const store = Store.open(path, { create: true });
    try {
      const good1 = store.commits.run(() => store.certs.insert(certRow("4b01")));
      const bad = store.commits.run(() => {
        store.certs.insert(certRow("4b02"));
        throw new Error("policy changed its mind");
      });
      const good2 = store.commits.run(() => store.certs.insert(certRow("4b03")));
      const dup = store.commits.run(() => store.certs.insert(certRow("4b01")));
      assert.equal(await good1, true);
      await assert.rejects(bad, /policy changed its mind/);
      assert.equal(await good2, true);
      assert.equal(await dup, false, "a taken serial is reported so the CA draws another");
      assert.ok(store.certs.get("4b01"));
      assert.equal(store.certs.get("4b02"), null, "the failing write left nothing behind");
      assert.ok(store.certs.get("4b03"));
    } finally {
      store.close();
    }
  });

  test("request-log entries are readable at once in this process and durable after close", async () => {
    const path = join(dir, "c.db");
    const store = Store.open(path, { create: true });
    for (let i = 0; i < 5; i++) {
      store.requests.add({ at: Date.now(), requestId: `r${i}`, operation: "simpleenroll", label: null, method: "POST", clientAddr: "127.0.0.1", clientIdentity: "user:t", authMethod: "basic", tlsVersion: "TLSv1.3", status: 200, reason: null, serial: null, enrollmentId: null, durationMs: 1 });
    }
    assert.equal(store.requests.list().length, 5);
    store.requests.add({ at: Date.now(), requestId: "last", operation: "cacerts", label: null, method: "GET", clientAddr: null, clientIdentity: null, authMethod: null, tlsVersion: null, status: 200, reason: null, serial: null, enrollmentId: null, durationMs: 1 });
    store.close();
    const db = new Database(path, { readonly: true });
    try {
      assert.equal((db.prepare("SELECT count(*) AS n FROM est_requests").get() as { n: number }).n, 6, "close() commits what was queued");
    } finally {
      db.close();
    }
  });
});

describe("list() and counts() without table scans give the answers a scan gives", () => {
  const dir = tempDir();
  after(() => cleanup(dir));
  const now = Date.now();
  const DAY = 86400_000;

  /** The meaning of list(), written the slow, obvious way over every row. */
  function oracle(all: CertRecord[], q: CertQuery): { total: number; serials: string[] } {
    let rows = all.filter((c) => c.kind === "ee");
    if (q.q) {
      const needle = q.q.toLowerCase();
      const qs = needle.replace(/:/g, "");
      // Fewer than three characters: a serial-number prefix only.
      const substring = [...q.q].length >= 3;
      rows = rows.filter((c) => (substring && (c.subject.toLowerCase().includes(needle) || JSON.stringify(c.sans).toLowerCase().includes(needle) || c.requester.toLowerCase().includes(needle))) || c.serial.startsWith(qs));
    }
    if (q.status === "expired") rows = rows.filter((c) => c.notAfter < now);
    else if (q.status === "expiring") rows = rows.filter((c) => c.status === "valid" && c.notAfter >= now && c.notAfter < now + EXPIRING_WINDOW_MS);
    else if (q.status === "valid") rows = rows.filter((c) => c.status === "valid" && c.notAfter >= now);
    else if (q.status) rows = rows.filter((c) => c.status === q.status);
    const key = { created: "createdAt", subject: "subject", serial: "serial", status: "status", expiry: "notAfter" }[q.sort ?? "created"] as keyof CertRecord;
    const sign = q.order === "asc" ? 1 : -1;
    const cmp = (a: unknown, b: unknown) => (a! < b! ? -1 : a! > b! ? 1 : 0);
    rows.sort((a, b) => sign * (cmp(a[key], b[key]) || cmp(a.serial, b.serial)));
    const offset = q.offset ?? 0;
    return { total: rows.length, serials: rows.slice(offset, offset + (q.limit ?? 50)).map((c) => c.serial) };
  }

  test("every filter, sort, search and count matches a full scan", async () => {
    const store = Store.open(join(dir, "list.db"), { create: true });
    try {
      // 3000 rows: 1 in 40 revoked, 1 in 15 superseded, ages over 400 days with 365-day validity
      // (some expired, some expiring), a few of other kinds, clustered names and serials.
      store.transaction(() => {
        for (let i = 0; i < 3000; i++) {
          const created = now - ((i * 7919) % 3000) * (400 / 3000) * DAY;
          const serial = (0x40 + (i % 7)).toString(16) + i.toString(16).padStart(8, "0") + "ab";
          const name = `dev-${String(i).padStart(5, "0")}`;
          store.certs.insert(certRow(serial, { subject: `CN=${name}, O=Line ${i % 4}`, sans: i % 3 ? [`dns:${name}.plant.example`] : [], requester: `user:robot-${i % 5}`, createdAt: created, notBefore: created, notAfter: created + 365 * DAY, kind: i % 500 === 3 ? "tls" : "ee" }));
          if (i % 40 === 1) store.certs.revoke(serial, "keyCompromise", created + DAY);
          else if (i % 15 === 2) store.certs.supersede(serial, "00");
        }
      });
      const all = store.certs.list({ limit: 500 }).total; // warms nothing; just a call before the oracle read
      assert.ok(all > 2900);
      const everything: CertRecord[] = [];
      for (let off = 0; ; off += 500) {
        const page = store.certs.list({ limit: 500, offset: off, sort: "serial", order: "asc" }, now).items;
        everything.push(...page);
        if (page.length < 500) break;
      }
      // The kinds the list hides are in the store too: read them straight from get().
      for (let i = 3; i < 3000; i += 500) everything.push(store.certs.get((0x40 + (i % 7)).toString(16) + i.toString(16).padStart(8, "0") + "ab")!);
      assert.equal(everything.length, 3000);

      const queries: CertQuery[] = [
        {}, { order: "asc" }, { offset: 120, limit: 30 }, { sort: "subject", order: "asc" }, { sort: "expiry" }, { sort: "serial" }, { sort: "status", order: "asc" },
        { status: "valid" }, { status: "revoked" }, { status: "superseded" }, { status: "expired" }, { status: "expiring" }, { status: "expired", sort: "subject" },
        { q: "dev-0012" }, { q: "DEV-0012" }, { q: "plant" }, { q: "robot-3" }, { q: "robot-3", status: "revoked" }, { q: "robot-3", status: "valid", offset: 40 },
        { q: "line 2", status: "expired" }, { q: "44" }, { q: "4" }, { q: "43000000" }, { q: "43:00:00:00" }, { q: "no such thing" }, { q: 'quote"d' }, { q: "50%" }, { q: "v" }, { q: "de" }, { q: "45" },
      ];
      // Search must be exact whether the rows are still waiting for the trigram index, all in
      // it, or some of each.
      const check = (when: string) => {
        for (const q of queries) {
          const got = store.certs.list(q, now);
          const want = oracle(everything, q);
          assert.equal(got.total, want.total, `${when}: total of ${JSON.stringify(q)}`);
          assert.deepEqual(got.items.map((c) => c.serial), want.serials, `${when}: rows of ${JSON.stringify(q)}`);
        }
      };
      check("none indexed yet");
      assert.equal(store.certs.indexSearch(), 3000, "every row is indexed in one batch");
      assert.equal(store.certs.indexSearch(), 0, "and only once");
      check("all indexed");
      const late = certRow("4f00000001", { subject: "CN=dev-late, O=Line 9", requester: "user:robot-3", createdAt: now, notBefore: now, notAfter: now + DAY });
      store.certs.insert(late);
      everything.push(store.certs.get(late.serial)!);
      queries.push({ q: "dev-late" }, { q: "line 9" });
      check("one row not indexed yet");
      assert.equal(store.certs.indexSearch(), 1);
      check("indexed again");

      const ee = everything.filter((c) => c.kind === "ee");
      const validInDate = ee.filter((c) => c.status === "valid" && c.notAfter >= now);
      assert.deepEqual(store.certs.counts(now), {
        issued: ee.length,
        valid: validInDate.length,
        revoked: ee.filter((c) => c.status === "revoked").length,
        superseded: ee.filter((c) => c.status === "superseded").length,
        expired: ee.filter((c) => c.status === "valid" && c.notAfter < now).length,
        expiringSoon: validInDate.filter((c) => c.notAfter < now + EXPIRING_WINDOW_MS).length,
      });
    } finally {
      store.close();
    }
  });
});
