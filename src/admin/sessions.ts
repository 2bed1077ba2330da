import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Store } from "../store/index.ts";

export interface Session {
  /** The cookie value. Only its SHA-256 is stored, so a copy of the database opens no session. */
  id: string;
  user: string;
  /** Sent back by the UI in X-CSRF-Token on every state-changing call. */
  csrf: string;
  createdAt: number;
  expiresAt: number;
}

const hashOf = (id: string) => createHash("sha256").update(id).digest("hex");

/**
 * Admin sessions, kept in the store so that every server process (--workers) knows them and a
 * restart does not sign anyone out before the session's time is up.
 */
export class SessionStore {
  constructor(
    private readonly store: Store,
    private readonly ttlMs: number,
  ) {}

  create(user: string, now = Date.now()): Session {
    const s: Session = { id: randomBytes(32).toString("base64url"), user, csrf: randomBytes(32).toString("base64url"), createdAt: now, expiresAt: now + this.ttlMs };
    this.store.adminSessions.create({ tokenSha256: hashOf(s.id), user, csrf: s.csrf, createdAt: now, expiresAt: s.expiresAt });
    return s;
  }

  get(id: string | undefined, now = Date.now()): Session | null {
    // A session id is 43 base64url characters; anything else is not worth a lookup.
    if (!id || !/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
    const r = this.store.adminSessions.get(hashOf(id), now);
    return r ? { id, user: r.user, csrf: r.csrf, createdAt: r.createdAt, expiresAt: r.expiresAt } : null;
  }

  destroy(id: string): void {
    this.store.adminSessions.delete(hashOf(id));
  }

  /** Ends every session of a user (after the account is removed). */
  destroyUser(user: string): void {
    this.store.adminSessions.deleteUser(user);
  }
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(s: Session, presented: string | undefined): boolean {
  if (!presented) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(s.csrf);
  return a.length === b.length && timingSafeEqual(a, b);
}
