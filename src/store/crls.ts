import type { Db } from "./db.ts";
import { wrapWriteError } from "./db.ts";

export interface CrlRecord {
  number: number;
  issuerKey: string;
  thisUpdate: number;
  nextUpdate: number;
  der: Buffer;
  /** How many revoked certificates it lists; null for CRLs stored before schema 6. */
  entries?: number | null;
}

const COLUMNS = `number, issuer_key AS issuerKey, this_update AS thisUpdate, next_update AS nextUpdate, der, entries`;

export class CrlRepo {
  constructor(private readonly db: Db) {}

  /** CRL numbers are shared across issuers so that they only ever grow (RFC 5280 5.2.3). */
  nextNumber(): number {
    const r = this.db.prepare(`SELECT max(number) AS n FROM crls`).get() as { n: number | null };
    return (r.n ?? 0) + 1;
  }

  add(c: CrlRecord): void {
    try {
      this.db.prepare(`INSERT INTO crls (number, issuer_key, this_update, next_update, der, entries) VALUES (@number, @issuerKey, @thisUpdate, @nextUpdate, @der, @entries)`).run({ ...c, entries: c.entries ?? null });
    } catch (e) {
      wrapWriteError(e);
    }
  }

  /**
   * Adds a CRL unless its number was taken meanwhile (another process published one between
   * nextNumber() and now); false tells the caller to draw a new number and sign again.
   */
  addIfNumberFree(c: CrlRecord): boolean {
    try {
      this.add(c);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") return false;
      throw e;
    }
  }

  latest(issuerKey: string): CrlRecord | null {
    return (this.db.prepare(`SELECT ${COLUMNS} FROM crls WHERE issuer_key = ? ORDER BY number DESC LIMIT 1`).get(issuerKey) as CrlRecord | undefined) ?? null;
  }
}
