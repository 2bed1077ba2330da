import type { Db } from "./db.ts";
import { wrapWriteError } from "./db.ts";

export type CertStatus = "valid" | "revoked" | "superseded";

export interface CertRecord {
  serial: string;
  subject: string;
  sans: string[];
  notBefore: number;
  notAfter: number;
  status: CertStatus;
  issuer: string;
  issuerKey: string;
  profile: string;
  requester: string;
  spkiSha256: string;
  der: Buffer;
  createdAt: number;
  revokedAt: number | null;
  revocationReason: string | null;
  supersededBy: string | null;
  kind: string;
}

export interface CertQuery {
  q?: string;
  status?: CertStatus | "expired" | "expiring";
  sort?: "created" | "subject" | "serial" | "status" | "expiry";
  order?: "asc" | "desc";
  limit?: number;
  offset?: number;
}

export interface CertCounts {
  issued: number;
  valid: number;
  revoked: number;
  superseded: number;
  expired: number;
  expiringSoon: number;
}

const SORT_COLUMNS: Record<NonNullable<CertQuery["sort"]>, string> = {
  created: "created_at",
  subject: "subject",
  serial: "serial",
  status: "status",
  expiry: "not_after",
};

interface Row {
  serial: string;
  subject: string;
  sans: string;
  not_before: number;
  not_after: number;
  status: CertStatus;
  issuer: string;
  issuer_key: string;
  profile: string;
  requester: string;
  spki_sha256: string;
  der: Buffer;
  created_at: number;
  revoked_at: number | null;
  revocation_reason: string | null;
  superseded_by: string | null;
  kind: string;
}

function fromRow(r: Row): CertRecord {
  return {
    serial: r.serial,
    subject: r.subject,
    sans: JSON.parse(r.sans) as string[],
    notBefore: r.not_before,
    notAfter: r.not_after,
    status: r.status,
    issuer: r.issuer,
    issuerKey: r.issuer_key,
    profile: r.profile,
    requester: r.requester,
    spkiSha256: r.spki_sha256,
    der: r.der,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
    revocationReason: r.revocation_reason,
    supersededBy: r.superseded_by,
    kind: r.kind,
  };
}

/**
 * Sorting whole rows would drag every candidate's DER through the sorter: pick the page's rowids
 * with only the sort keys, then read those rows.
 */
function pickThenRead(pick: string, order: string): string {
  return `SELECT c.* FROM certificates AS c WHERE c.rowid IN (SELECT rowid FROM (${pick})) ${order.replace(/ LIMIT .*/, "")}`;
}

/** The index that yields each sort order (migration 2), walked when the wanted rows are common. */
const SORT_INDEX: Record<NonNullable<CertQuery["sort"]>, string> = {
  created: "certificates_kind_created",
  subject: "certificates_kind_subject",
  serial: "sqlite_autoindex_certificates_1",
  status: "certificates_kind_status_serial",
  expiry: "certificates_kind_expiry",
};

export const EXPIRING_WINDOW_MS = 30 * 86400_000;

/** Searches shorter than this match serial-number prefixes only (list()). */
export const SUBSTRING_SEARCH_MIN = 3;

export class CertificateRepo {
  private readonly insertStmt;
  private readonly getStmt;

  constructor(private readonly db: Db) {
    this.insertStmt = db.prepare(`INSERT INTO certificates
      (serial, subject, sans, not_before, not_after, status, issuer, issuer_key, profile, requester, spki_sha256, der, created_at, kind)
      VALUES (@serial, @subject, @sans, @notBefore, @notAfter, 'valid', @issuer, @issuerKey, @profile, @requester, @spkiSha256, @der, @createdAt, @kind)`);
    this.getStmt = db.prepare(`SELECT * FROM certificates WHERE serial = ?`);
  }

  /** Returns false when the serial is taken, so the CA can draw another. */
  insert(rec: Omit<CertRecord, "status" | "revokedAt" | "revocationReason" | "supersededBy">): boolean {
    try {
      this.insertStmt.run({ ...rec, sans: JSON.stringify(rec.sans) });
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") return false;
      return wrapWriteError(e);
    }
  }

  private maxRowid(): number {
    return this.db.prepare(`SELECT coalesce(max(rowid), 0) FROM certificates`).pluck().get() as number;
  }

  /** Rows up to this rowid are in the trigram index; newer ones wait for indexSearch(). */
  private searchIndexedUpTo(): number {
    return Number((this.db.prepare(`SELECT value FROM meta WHERE key = 'search_indexed_rowid'`).pluck().get() as string | undefined) ?? 0);
  }

  /**
   * Adds the rows issued since the last call to the trigram index, in one transaction. The
   * server calls it every second and the store at close; a batch costs a fraction of indexing
   * each row in the transaction that issues it. Safe to run from several processes at once.
   */
  indexSearch(): number {
    // Most ticks find nothing new: see so without taking the write lock.
    if (this.maxRowid() <= this.searchIndexedUpTo()) return 0;
    try {
      return this.db
        .transaction(() => {
          const mark = this.searchIndexedUpTo();
          const top = this.maxRowid();
          if (top <= mark) return 0;
          const n = this.db.prepare(`INSERT INTO cert_search (rowid, subject, sans, requester) SELECT rowid, subject, sans, requester FROM certificates WHERE rowid > ? AND rowid <= ?`).run(mark, top).changes;
          this.db.prepare(`UPDATE meta SET value = ? WHERE key = 'search_indexed_rowid'`).run(String(top));
          return n;
        })
        .immediate();
    } catch (e) {
      return wrapWriteError(e);
    }
  }

  get(serial: string): CertRecord | null {
    const r = this.getStmt.get(serial.toLowerCase()) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  /**
   * The UI's certificate list. It must stay fast with a million rows (issue 6), so nothing here
   * scans the table: totals come from the trigger-kept cert_counts plus index range counts,
   * a search drives from the trigram index (cert_search) and the serial primary key, and rows
   * come either from the sort order's index with an early LIMIT (when the wanted rows are
   * common) or from the few matching rows, sorted (when they are rare).
   */
  list(query: CertQuery = {}, now = Date.now()): { total: number; items: CertRecord[] } {
    const params: Record<string, unknown> = { now, soon: now + EXPIRING_WINDOW_MS };
    let filter = "";
    if (query.status === "expired") filter = "c.not_after < @now";
    else if (query.status === "expiring") filter = "c.status = 'valid' AND c.not_after >= @now AND c.not_after < @soon";
    else if (query.status === "valid") filter = "c.status = 'valid' AND c.not_after >= @now";
    else if (query.status) {
      filter = "c.status = @status";
      params.status = query.status;
    }
    const filterCount = this.filterCount(query.status, now);
    const sort = query.sort && SORT_COLUMNS[query.sort] ? query.sort : "created";
    const col = SORT_COLUMNS[sort];
    const dir = query.order === "asc" ? "ASC" : "DESC";
    const limit = Math.min(Math.max(query.limit ?? 50, 1), 500);
    const offset = Math.max(query.offset ?? 0, 0);
    const order = `ORDER BY c.${col} ${dir}, c.serial ${dir} LIMIT ${limit} OFFSET ${offset}`;
    const and = (...conds: string[]) => conds.filter(Boolean).join(" AND ");

    // Walking the sort index visits about (offset + limit) / density rows, as long as the wanted
    // rows are spread through it. Expired and expiring certificates are not (they are the old
    // ones), and neither is a filter that keeps under 1% of the rows: those are read through the
    // filter's index and sorted.
    const timeBound = query.status === "expired" || query.status === "expiring";
    const filterIndex = query.status === "expired" ? "certificates_kind_expiry_created" : "certificates_kind_status";
    if (!query.q) {
      const dense = !filter || (!timeBound && filterCount * 100 >= this.kindCount());
      const rows = (
        dense
          ? this.db.prepare(`SELECT c.* FROM certificates AS c INDEXED BY ${SORT_INDEX[sort]} WHERE ${and("c.kind = 'ee'", filter)} ${order}`)
          : this.db.prepare(pickThenRead(`SELECT c.rowid, c.${col}, c.serial FROM certificates AS c INDEXED BY ${filterIndex} WHERE ${and("c.kind = 'ee'", filter)} ${order}`, order))
      ).all(params) as Row[];
      return { total: filterCount, items: rows.map(fromRow) };
    }

    // The matching rows: a substring of subject, SANs or requester, or a prefix of the serial.
    const qs = query.q.toLowerCase().replace(/:/g, "");
    params.qs = qs;
    params.qsEnd = qs + "\u007f"; // serials are lower-case hex: every one starting with qs sorts below this
    let matches: string;
    const short = [...query.q].length < SUBSTRING_SEARCH_MIN;
    if (!short) {
      params.fts = `"${query.q.replace(/"/g, '""')}"`;
      params.q = `%${query.q.replace(/[\\%_]/g, (c) => "\\" + c)}%`;
      params.mark = this.searchIndexedUpTo();
      // The newest rows, not yet in the trigram index, are matched directly: few, and by rowid.
      matches = `SELECT rowid AS id FROM cert_search WHERE cert_search MATCH @fts
        UNION SELECT rowid FROM certificates WHERE serial >= @qs AND serial < @qsEnd
        UNION SELECT rowid FROM certificates WHERE rowid > @mark AND (subject LIKE @q ESCAPE '\\' OR sans LIKE @q ESCAPE '\\' OR requester LIKE @q ESCAPE '\\')`;
    } else {
      // The trigram index needs three characters, and a substring of one or two matches most of
      // a large store anyway: a short search is a serial-number prefix only, read from the key.
      matches = `SELECT rowid AS id FROM certificates WHERE serial >= @qs AND serial < @qsEnd`;
    }
    // The match set is computed once; the queries below read it back from JSON.
    const ids = this.db.prepare(matches).pluck().all(params) as number[];
    // Rows of other kinds (the listener's own certificates) are few: take them out here.
    const other = new Set(
      this.db.prepare(`SELECT rowid FROM certificates INDEXED BY certificates_kind_created WHERE kind IN (SELECT kind FROM cert_counts WHERE kind != 'ee' AND n > 0)`).pluck().all() as number[],
    );
    const eeIds = other.size ? ids.filter((id) => !other.has(id)) : ids;
    params.ids = JSON.stringify(eeIds);
    const m = "WITH m(id) AS (SELECT value FROM json_each(@ids))";
    const n = (sql: string) => (this.db.prepare(sql).get(params) as { n: number }).n;
    let total: number;
    if (!filter) total = eeIds.length;
    else if (eeIds.length <= filterCount) total = n(`${m} SELECT count(*) AS n FROM m CROSS JOIN certificates AS c ON c.rowid = m.id WHERE ${filter}`);
    else total = n(`${m} SELECT count(*) AS n FROM certificates AS c INDEXED BY ${filterIndex} WHERE ${and("c.kind = 'ee'", filter)} AND c.rowid IN m`);
    const dense = !timeBound && total * 100 >= this.kindCount();
    let sql: string;
    if (dense) sql = `${m} SELECT c.* FROM certificates AS c INDEXED BY ${SORT_INDEX[sort]} WHERE ${and("c.kind = 'ee'", filter)} AND c.rowid IN m ${order}`;
    else if (!filter || eeIds.length <= filterCount) sql = `${m} ${pickThenRead(`SELECT c.rowid, c.${col}, c.serial FROM m CROSS JOIN certificates AS c ON c.rowid = m.id WHERE ${and("c.kind = 'ee'", filter)} ${order}`, order)}`;
    else sql = `${m} ${pickThenRead(`SELECT c.rowid, c.${col}, c.serial FROM certificates AS c INDEXED BY ${filterIndex} WHERE ${and("c.kind = 'ee'", filter)} AND c.rowid IN m ${order}`, order)}`;
    const rows = this.db.prepare(sql).all(params) as Row[];
    return { total, items: rows.map(fromRow) };
  }

  /** End-entity certificates per status, from the trigger-kept counters. */
  private byStatus(): Record<CertStatus, number> {
    const r: Record<CertStatus, number> = { valid: 0, revoked: 0, superseded: 0 };
    for (const row of this.db.prepare(`SELECT status, n FROM cert_counts WHERE kind = 'ee'`).all() as { status: CertStatus; n: number }[]) r[row.status] = row.n;
    return r;
  }

  private kindCount(): number {
    const b = this.byStatus();
    return b.valid + b.revoked + b.superseded;
  }

  /** How many end-entity certificates a status filter keeps, without scanning. */
  private filterCount(status: CertQuery["status"], now: number): number {
    if (!status) return this.kindCount();
    if (status === "revoked" || status === "superseded") return this.byStatus()[status];
    if (status === "expired") {
      return (this.db.prepare(`SELECT count(*) AS n FROM certificates INDEXED BY certificates_kind_expiry WHERE kind = 'ee' AND not_after < ?`).get(now) as { n: number }).n;
    }
    const c = this.counts(now);
    return status === "valid" ? c.valid : c.expiringSoon;
  }

  counts(now = Date.now()): CertCounts {
    const b = this.byStatus();
    const range = (from: number, to: number) =>
      (this.db.prepare(`SELECT count(*) AS n FROM certificates INDEXED BY certificates_kind_status WHERE kind = 'ee' AND status = 'valid' AND not_after >= ? AND not_after < ?`).get(from, to) as { n: number }).n;
    const expired = range(Number.MIN_SAFE_INTEGER, now);
    return {
      issued: b.valid + b.revoked + b.superseded,
      valid: b.valid - expired,
      revoked: b.revoked,
      superseded: b.superseded,
      expired,
      expiringSoon: range(now, now + EXPIRING_WINDOW_MS),
    };
  }

  /** Certificates issued per day, oldest first, for the dashboard chart. */
  issuancePerDay(days: number, now = Date.now()): { day: string; count: number }[] {
    return this.db
      .prepare(`SELECT strftime('%Y-%m-%d', created_at / 1000, 'unixepoch') AS day, count(*) AS count
        FROM certificates WHERE kind = 'ee' AND created_at >= ? GROUP BY day ORDER BY day`)
      .all(now - days * 86400_000) as { day: string; count: number }[];
  }

  revoke(serial: string, reason: string, at: number): boolean {
    try {
      const r = this.db
        .prepare(`UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ? WHERE serial = ? AND status != 'revoked'`)
        .run(at, reason, serial.toLowerCase());
      return r.changes === 1;
    } catch (e) {
      return wrapWriteError(e);
    }
  }

  supersede(serial: string, by: string): void {
    try {
      this.db.prepare(`UPDATE certificates SET status = 'superseded', superseded_by = ? WHERE serial = ? AND status = 'valid'`).run(by, serial.toLowerCase());
    } catch (e) {
      wrapWriteError(e);
    }
  }

  /** How many unexpired revoked certificates one key has, and the latest revocation: tells whether its CRL is stale. */
  revocationSummary(issuerKey: string, now = Date.now()): { count: number; lastAt: number } {
    return this.db
      .prepare(`SELECT count(*) AS count, coalesce(max(revoked_at), 0) AS lastAt FROM certificates
        WHERE status = 'revoked' AND issuer_key = ? AND not_after >= ?`)
      .get(issuerKey, now) as { count: number; lastAt: number };
  }

  /** Revoked certificates of one issuing key that have not yet expired, for its CRL. */
  revokedBy(issuerKey: string, now = Date.now()): { serial: string; revokedAt: number; reason: string | null }[] {
    return this.db
      .prepare(`SELECT serial, revoked_at AS revokedAt, revocation_reason AS reason FROM certificates
        WHERE status = 'revoked' AND issuer_key = ? AND not_after >= ? ORDER BY revoked_at`)
      .all(issuerKey, now) as { serial: string; revokedAt: number; reason: string | null }[];
  }
}
