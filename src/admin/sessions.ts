import { randomBytes, timingSafeEqual } from "node:crypto";

export interface Session {
  id: string;
  user: string;
  /** Sent back by the UI in X-CSRF-Token on every state-changing call. */
  csrf: string;
  createdAt: number;
  expiresAt: number;
}

const MAX_SESSIONS = 1000;

/**
 * Admin sessions, in memory: a restart logs everyone out, which is what an appliance operator
 * expects, and nothing secret is written to disk.
 */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly ttlMs: number) {}

  create(user: string, now = Date.now()): Session {
    this.prune(now);
    // A flood of logins must not grow memory without bound: the oldest session goes first.
    if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const s: Session = { id: randomBytes(32).toString("base64url"), user, csrf: randomBytes(32).toString("base64url"), createdAt: now, expiresAt: now + this.ttlMs };
    this.sessions.set(s.id, s);
    return s;
  }

  get(id: string | undefined, now = Date.now()): Session | null {
    if (!id) return null;
    const s = this.sessions.get(id);
    if (!s) return null;
    if (s.expiresAt <= now) {
      this.sessions.delete(id);
      return null;
    }
    return s;
  }

  destroy(id: string): void {
    this.sessions.delete(id);
  }

  /** Ends every session of a user (after the account is removed). */
  destroyUser(user: string): void {
    for (const [id, s] of this.sessions) if (s.user === user) this.sessions.delete(id);
  }

  private prune(now: number): void {
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
  }
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(s: Session, presented: string | undefined): boolean {
  if (!presented) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(s.csrf);
  return a.length === b.length && timingSafeEqual(a, b);
}
