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

export const EXPIRING_WINDOW_MS = 30 * 86400_000;

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

  get(serial: string): CertRecord | null {
    const r = this.getStmt.get(serial.toLowerCase()) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  list(query: CertQuery = {}, now = Date.now()): { total: number; items: CertRecord[] } {
    const where: string[] = ["kind = 'ee'"];
    const params: Record<string, unknown> = { now, soon: now + EXPIRING_WINDOW_MS };
    if (query.q) {
      where.push("(subject LIKE @q ESCAPE '\\' OR sans LIKE @q ESCAPE '\\' OR serial LIKE @qs ESCAPE '\\' OR requester LIKE @q ESCAPE '\\')");
      const esc = query.q.replace(/[\\%_]/g, (c) => "\\" + c);
      params.q = `%${esc}%`;
      params.qs = `${esc.toLowerCase().replace(/:/g, "")}%`;
    }
    if (query.status === "expired") where.push("not_after < @now");
    else if (query.status === "expiring") where.push("status = 'valid' AND not_after >= @now AND not_after < @soon");
    else if (query.status === "valid") where.push("status = 'valid' AND not_after >= @now");
    else if (query.status) {
      where.push("status = @status");
      params.status = query.status;
    }
    const w = `WHERE ${where.join(" AND ")}`;
    const col = SORT_COLUMNS[query.sort ?? "created"] ?? "created_at";
    const dir = query.order === "asc" ? "ASC" : "DESC";
    const limit = Math.min(Math.max(query.limit ?? 50, 1), 500);
    const offset = Math.max(query.offset ?? 0, 0);
    const total = (this.db.prepare(`SELECT count(*) AS n FROM certificates ${w}`).get(params) as { n: number }).n;
    const rows = this.db
      .prepare(`SELECT * FROM certificates ${w} ORDER BY ${col} ${dir}, serial ${dir} LIMIT ${limit} OFFSET ${offset}`)
      .all(params) as Row[];
    return { total, items: rows.map(fromRow) };
  }

  counts(now = Date.now()): CertCounts {
    const r = this.db
      .prepare(`SELECT count(*) AS issued,
          coalesce(sum(status = 'valid' AND not_after >= @now), 0) AS valid,
          coalesce(sum(status = 'revoked'), 0) AS revoked,
          coalesce(sum(status = 'superseded'), 0) AS superseded,
          coalesce(sum(status = 'valid' AND not_after < @now), 0) AS expired,
          coalesce(sum(status = 'valid' AND not_after >= @now AND not_after < @soon), 0) AS expiringSoon
        FROM certificates WHERE kind = 'ee'`)
      .get({ now, soon: now + EXPIRING_WINDOW_MS }) as CertCounts;
    return r;
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
