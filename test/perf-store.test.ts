// Issue 6: the store's fast paths keep the store's promises. Group commit must not answer before
// a write is durable, must isolate a failing write, and the request log must still be complete.
// Real SQLite files only; no timing assertions (the machine is shared).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Store } from "../src/store/index.ts";
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
