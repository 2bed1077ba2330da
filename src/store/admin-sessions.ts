import type { Db } from "./db.ts";
import { wrapWriteError } from "./db.ts";

export interface AdminSessionRecord {
  tokenSha256: string;
  user: string;
  csrf: string;
  createdAt: number;
  expiresAt: number;
}

/**
 * Web UI sessions and failed sign-ins. They live in the database, not in one process's memory,
 * so that every server process (--workers) knows every session and counts every failure.
 */
export class AdminSessionRepo {
  constructor(private readonly db: Db) {}

  create(r: AdminSessionRecord): void {
    try {
      this.db.prepare(`DELETE FROM admin_sessions WHERE expires_at <= ?`).run(r.createdAt);
      this.db
        .prepare(`INSERT INTO admin_sessions (token_sha256, user, csrf, created_at, expires_at) VALUES (@tokenSha256, @user, @csrf, @createdAt, @expiresAt)`)
        .run(r);
    } catch (e) {
      wrapWriteError(e);
    }
  }

  /** The session, unless it does not exist or has expired. */
  get(tokenSha256: string, now = Date.now()): AdminSessionRecord | null {
    const r = this.db
      .prepare(`SELECT token_sha256 AS tokenSha256, user, csrf, created_at AS createdAt, expires_at AS expiresAt FROM admin_sessions WHERE token_sha256 = ? AND expires_at > ?`)
      .get(tokenSha256, now) as AdminSessionRecord | undefined;
    return r ?? null;
  }

  delete(tokenSha256: string): void {
    try {
      this.db.prepare(`DELETE FROM admin_sessions WHERE token_sha256 = ?`).run(tokenSha256);
    } catch (e) {
      wrapWriteError(e);
    }
  }

  deleteUser(user: string): void {
    try {
      this.db.prepare(`DELETE FROM admin_sessions WHERE user = ?`).run(user);
    } catch (e) {
      wrapWriteError(e);
    }
  }

  addFailure(keys: string[], at: number, forgetBefore: number): void {
    try {
      this.db.transaction(() => {
        const ins = this.db.prepare(`INSERT INTO admin_login_failures (key, at) VALUES (?, ?)`);
        for (const k of keys) ins.run(k, at);
        this.db.prepare(`DELETE FROM admin_login_failures WHERE at < ?`).run(forgetBefore);
      })();
    } catch (e) {
      wrapWriteError(e);
    }
  }

  /** How many failures a key has since `since`, and when the latest was. */
  failures(key: string, since: number): { count: number; last: number | null } {
    return this.db.prepare(`SELECT count(*) AS count, max(at) AS last FROM admin_login_failures WHERE key = ? AND at >= ?`).get(key, since) as { count: number; last: number | null };
  }

  clearFailures(key: string): void {
    try {
      this.db.prepare(`DELETE FROM admin_login_failures WHERE key = ?`).run(key);
    } catch (e) {
      wrapWriteError(e);
    }
  }
}
