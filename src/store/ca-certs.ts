import type { Db } from "./db.ts";
import { wrapWriteError } from "./db.ts";

export type CaCertRole = "root" | "oldWithNew" | "newWithOld" | "ocsp";
export type CaCertStatus = "active" | "retired" | "pending";

export interface CaCertRecord {
  id: number;
  generation: number;
  role: CaCertRole;
  status: CaCertStatus;
  keyLabel: string | null;
  keyType: string | null;
  subject: string;
  serial: string;
  ski: string;
  notBefore: number;
  notAfter: number;
  der: Buffer;
  createdAt: number;
}

const COLUMNS = `id, generation, role, status, key_label AS keyLabel, key_type AS keyType, subject, serial, ski,
  not_before AS notBefore, not_after AS notAfter, der, created_at AS createdAt`;

/** Every CA certificate estca has made: roots, rollover links, the OCSP signer. */
export class CaCertRepo {
  // fingerprint() runs on every issuance and /cacerts: prepare it once.
  private readonly fingerprintStmt;

  constructor(private readonly db: Db) {
    this.fingerprintStmt = db.prepare(`SELECT count(*) AS n, coalesce(max(id), 0) AS m, coalesce(group_concat(id || status, ','), '') AS s FROM ca_certs`);
  }

  add(c: Omit<CaCertRecord, "id" | "createdAt">, now = Date.now()): number {
    try {
      const r = this.db
        .prepare(`INSERT INTO ca_certs (generation, role, status, key_label, key_type, subject, serial, ski, not_before, not_after, der, created_at)
          VALUES (@generation, @role, @status, @keyLabel, @keyType, @subject, @serial, @ski, @notBefore, @notAfter, @der, @now)`)
        .run({ ...c, now });
      return Number(r.lastInsertRowid);
    } catch (e) {
      return wrapWriteError(e);
    }
  }

  all(): CaCertRecord[] {
    return this.db.prepare(`SELECT ${COLUMNS} FROM ca_certs ORDER BY generation, id`).all() as CaCertRecord[];
  }

  find(role: CaCertRole, status: CaCertStatus): CaCertRecord[] {
    return this.db.prepare(`SELECT ${COLUMNS} FROM ca_certs WHERE role = ? AND status = ? ORDER BY generation DESC, id DESC`).all(role, status) as CaCertRecord[];
  }

  setStatus(id: number, status: CaCertStatus): void {
    try {
      this.db.prepare(`UPDATE ca_certs SET status = ? WHERE id = ?`).run(status, id);
    } catch (e) {
      wrapWriteError(e);
    }
  }

  /**
   * Changes whenever a CA certificate is added, removed or changes status: a running server
   * compares it on a timer to notice a rollover made by another process (the CLI).
   */
  fingerprint(): string {
    const r = this.fingerprintStmt.get() as { n: number; m: number; s: string };
    return `${r.n}:${r.m}:${r.s}`;
  }

  remove(id: number): void {
    try {
      this.db.prepare(`DELETE FROM ca_certs WHERE id = ?`).run(id);
    } catch (e) {
      wrapWriteError(e);
    }
  }
}
