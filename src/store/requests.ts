import type { CommitQueue } from "./commit-queue.ts";
import type { Db } from "./db.ts";

/** One EST request as the request inspector shows it. */
export interface RequestLogEntry {
  id?: number;
  at: number;
  requestId: string;
  operation: string;
  label: string | null;
  method: string;
  clientAddr: string | null;
  clientIdentity: string | null;
  authMethod: string | null;
  tlsVersion: string | null;
  status: number;
  reason: string | null;
  serial: string | null;
  enrollmentId: number | null;
  durationMs: number | null;
}

export class RequestLogRepo {
  private readonly insertStmt;

  constructor(
    private readonly db: Db,
    private readonly commits: CommitQueue,
  ) {
    this.insertStmt = db.prepare(`INSERT INTO est_requests
      (at, request_id, operation, label, method, client_addr, client_identity, auth_method, tls_version, status, reason, serial, enrollment_id, duration_ms)
      VALUES (@at, @requestId, @operation, @label, @method, @clientAddr, @clientIdentity, @authMethod, @tlsVersion, @status, @reason, @serial, @enrollmentId, @durationMs)`);
  }

  /**
   * The log is diagnostic: losing an entry to a full disk must not fail the request itself. So
   * the entry joins the next group commit instead of paying an fsync of its own before the
   * response; it is on disk a moment later, and reads in this process see it at once.
   */
  add(e: RequestLogEntry): void {
    this.commits.defer(() => {
      this.insertStmt.run(e);
    });
  }

  list(opts: { client?: string; afterId?: number; limit?: number; failuresOnly?: boolean } = {}): RequestLogEntry[] {
    this.commits.flush();
    const where: string[] = [];
    const params: Record<string, unknown> = {};
    if (opts.client) {
      where.push("(client_identity LIKE @c OR client_addr LIKE @c)");
      params.c = `%${opts.client}%`;
    }
    if (opts.afterId) {
      where.push("id > @after");
      params.after = opts.afterId;
    }
    if (opts.failuresOnly) where.push("status >= 400");
    const limit = Math.min(Math.max(opts.limit ?? 100, 1), 1000);
    const sql = `SELECT id, at, request_id AS requestId, operation, label, method, client_addr AS clientAddr,
        client_identity AS clientIdentity, auth_method AS authMethod, tls_version AS tlsVersion, status, reason,
        serial, enrollment_id AS enrollmentId, duration_ms AS durationMs
      FROM est_requests ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY id DESC LIMIT ${limit}`;
    return this.db.prepare(sql).all(params) as RequestLogEntry[];
  }
}
