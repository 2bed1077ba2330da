import { EstcaError, messageOf, unavailable } from "../errors.ts";
import { AdminSessionRepo } from "./admin-sessions.ts";
import { CaCertRepo } from "./ca-certs.ts";
import { CertificateRepo } from "./certificates.ts";
import { CommitQueue } from "./commit-queue.ts";
import { CrlRepo } from "./crls.ts";
import { type Db, openDb, wrapWriteError } from "./db.ts";
import { EnrollmentRepo } from "./enrollments.ts";
import { MetaRepo } from "./meta.ts";
import { RequestLogRepo } from "./requests.ts";
import { UserRepo } from "./users.ts";

export type { CertRecord, CertQuery, CertStatus, CertCounts } from "./certificates.ts";
export { SUBSTRING_SEARCH_MIN } from "./certificates.ts";
export type { RequestLogEntry } from "./requests.ts";
export type { Enrollment, EnrollmentState } from "./enrollments.ts";
export type { UserRecord, UserRole } from "./users.ts";
export type { CaCertRecord, CaCertRole, CaCertStatus } from "./ca-certs.ts";
export type { CrlRecord } from "./crls.ts";
export type { AdminSessionRecord } from "./admin-sessions.ts";

/** The storage authority: the only code in estca that speaks SQL. */
export class Store {
  readonly certs: CertificateRepo;
  readonly requests: RequestLogRepo;
  readonly enrollments: EnrollmentRepo;
  readonly users: UserRepo;
  readonly caCerts: CaCertRepo;
  readonly crls: CrlRepo;
  readonly meta: MetaRepo;
  readonly adminSessions: AdminSessionRepo;
  /** Group commit for the hot write path (certificate issuance, the request log). */
  readonly commits: CommitQueue;

  private constructor(private readonly db: Db) {
    this.commits = new CommitQueue(db);
    this.certs = new CertificateRepo(db);
    this.requests = new RequestLogRepo(db, this.commits);
    this.enrollments = new EnrollmentRepo(db);
    this.users = new UserRepo(db);
    this.caCerts = new CaCertRepo(db);
    this.crls = new CrlRepo(db);
    this.meta = new MetaRepo(db);
    this.adminSessions = new AdminSessionRepo(db);
  }

  static open(path: string, opts: { create: boolean } = { create: false }): Store {
    return new Store(openDb(path, opts));
  }

  /** Runs fn in one durable transaction: all of it is committed, or none. */
  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (e) {
      if (e instanceof EstcaError) throw e;
      return wrapWriteError(e);
    }
  }

  /**
   * For bulk loads with the server stopped (scripts/seed.ts): one big transaction without
   * fsyncs and with a large page cache. A crash midway loses the load, never older data.
   */
  bulkLoad<T>(fn: () => T): T {
    const cache = this.db.pragma("cache_size", { simple: true });
    this.db.pragma("synchronous = OFF");
    this.db.pragma("cache_size = -262144");
    try {
      return this.transaction(fn);
    } finally {
      this.db.pragma("synchronous = FULL");
      this.db.pragma(`cache_size = ${Number(cache)}`);
    }
  }

  /**
   * Readiness: a committed write proves the file, its directory and the disk take writes. A
   * write that is rolled back never leaves the page cache, so it passed on a full disk.
   */
  checkWritable(): void {
    try {
      this.db.prepare(`INSERT INTO meta (key, value) VALUES ('readyz', @v) ON CONFLICT(key) DO UPDATE SET value = @v`).run({ v: String(Date.now()) });
    } catch (e) {
      throw unavailable(`the database is not writable: ${messageOf(e)}`, 10);
    }
  }

  integrityCheck(): string {
    return String(this.db.pragma("integrity_check", { simple: true }));
  }

  close(): void {
    if (this.db.open) {
      this.commits.flush();
      try {
        if (!this.db.readonly) this.certs.indexSearch();
      } catch {
        /* the next process to close or the server's tick indexes them; search reads them meanwhile */
      }
      try {
        this.db.pragma("wal_checkpoint(TRUNCATE)");
      } catch {
        /* read-only: the WAL stays for next time */
      }
      this.db.close();
    }
  }
}

