import type { Db } from "./db.ts";
import { wrapWriteError } from "./db.ts";

export type EnrollmentState = "pending" | "approved" | "rejected" | "issued";

export interface Enrollment {
  id: number;
  createdAt: number;
  updatedAt: number;
  profile: string;
  operation: string;
  requester: string;
  subject: string;
  sans: string[];
  spkiSha256: string;
  csrDer: Buffer;
  state: EnrollmentState;
  reason: string | null;
  decidedBy: string | null;
  serial: string | null;
}

interface Row extends Omit<Enrollment, "sans"> {
  sans: string;
}

const COLUMNS = `id, created_at AS createdAt, updated_at AS updatedAt, profile, operation, requester, subject, sans,
  spki_sha256 AS spkiSha256, csr_der AS csrDer, state, reason, decided_by AS decidedBy, serial`;

const fromRow = (r: Row): Enrollment => ({ ...r, sans: JSON.parse(r.sans) as string[] });

/** Requests held for a person's decision (profiles with approval: manual). */
export class EnrollmentRepo {
  constructor(private readonly db: Db) {}

  create(e: Pick<Enrollment, "profile" | "operation" | "requester" | "subject" | "sans" | "spkiSha256" | "csrDer">, now = Date.now()): number {
    try {
      const r = this.db
        .prepare(`INSERT INTO enrollments (created_at, updated_at, profile, operation, requester, subject, sans, spki_sha256, csr_der, state)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')`)
        .run(now, now, e.profile, e.operation, e.requester, e.subject, JSON.stringify(e.sans), e.spkiSha256, e.csrDer);
      return Number(r.lastInsertRowid);
    } catch (err) {
      return wrapWriteError(err);
    }
  }

  get(id: number): Enrollment | null {
    const r = this.db.prepare(`SELECT ${COLUMNS} FROM enrollments WHERE id = ?`).get(id) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  /** The latest enrollment for the same key and subject that is not yet finished with. */
  findOpen(profile: string, spkiSha256: string, subject: string): Enrollment | null {
    const r = this.db
      .prepare(`SELECT ${COLUMNS} FROM enrollments WHERE profile = ? AND spki_sha256 = ? AND subject = ?
        AND state IN ('pending','approved','rejected') ORDER BY id DESC LIMIT 1`)
      .get(profile, spkiSha256, subject) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  list(state?: EnrollmentState, limit = 200): Enrollment[] {
    const rows = state
      ? this.db.prepare(`SELECT ${COLUMNS} FROM enrollments WHERE state = ? ORDER BY id DESC LIMIT ?`).all(state, limit)
      : this.db.prepare(`SELECT ${COLUMNS} FROM enrollments ORDER BY id DESC LIMIT ?`).all(limit);
    return (rows as Row[]).map(fromRow);
  }

  countPending(): number {
    return (this.db.prepare(`SELECT count(*) AS n FROM enrollments WHERE state = 'pending'`).get() as { n: number }).n;
  }

  /** Moves a pending enrollment to approved or rejected; false if it was not pending. */
  decide(id: number, state: "approved" | "rejected", reason: string, by: string, now = Date.now()): boolean {
    try {
      const r = this.db
        .prepare(`UPDATE enrollments SET state = ?, reason = ?, decided_by = ?, updated_at = ? WHERE id = ? AND state = 'pending'`)
        .run(state, reason, by, now, id);
      return r.changes === 1;
    } catch (e) {
      return wrapWriteError(e);
    }
  }

  markIssued(id: number, serial: string, now = Date.now()): void {
    try {
      this.db.prepare(`UPDATE enrollments SET state = 'issued', serial = ?, updated_at = ? WHERE id = ?`).run(serial, now, id);
    } catch (e) {
      wrapWriteError(e);
    }
  }
}
