import { EstcaError } from "../errors.ts";

export interface ThrottleSettings {
  authFailuresPerUser: number;
  authFailuresPerAddress: number;
  authFailureWindowSeconds: number;
  authLockoutSeconds: number;
}

/** The schema's defaults (config.security), for callers that construct an Authenticator without a config. */
export const DEFAULT_THROTTLE: ThrottleSettings = { authFailuresPerUser: 5, authFailuresPerAddress: 20, authFailureWindowSeconds: 300, authLockoutSeconds: 300 };

interface Counter {
  /** Start of the current counting window (ms). */
  since: number;
  failures: number;
  /** While set and in the future, every attempt under this key gets 429. */
  lockedUntil: number;
}

/** Entries kept per map; a flood of made-up user names must not grow memory without bound. */
const MAX_ENTRIES = 50_000;

/**
 * Slows down password guessing. Failures are counted per user name and per client address in
 * a fixed window; reaching the limit locks that key for a while, during which every attempt
 * (even with the right password, so a guesser learns nothing) is answered 429 with Retry-After.
 * The lock ends by itself; nothing is persisted, so a restart also clears it.
 */
export class AuthThrottle {
  private readonly users = new Map<string, Counter>();
  private readonly addrs = new Map<string, Counter>();

  constructor(
    private readonly s: ThrottleSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** Runs one password check under the throttle: refused while locked, failures counted. */
  async guard<T>(user: string, addr: string | null, check: () => Promise<T>): Promise<T> {
    this.refuseIfLocked(user, addr);
    try {
      const r = await check();
      this.users.delete(user);
      return r;
    } catch (e) {
      if (e instanceof EstcaError && e.kind === "unauthorized") this.fail(user, addr);
      throw e;
    }
  }

  private refuseIfLocked(user: string, addr: string | null): void {
    const t = this.now();
    const u = this.lockedFor(this.users, user, t);
    const a = addr ? this.lockedFor(this.addrs, addr, t) : 0;
    const wait = Math.max(u, a);
    if (wait > 0) {
      const who = u >= a ? `user "${user}"` : `client address ${addr}`;
      throw new EstcaError("throttled", `too many failed logins for ${who}: try again in ${wait} s`, { retryAfter: wait });
    }
  }

  /** Seconds left on a lock, 0 when there is none. */
  private lockedFor(map: Map<string, Counter>, key: string, t: number): number {
    const c = map.get(key);
    if (!c || c.lockedUntil <= t) return 0;
    return Math.max(1, Math.ceil((c.lockedUntil - t) / 1000));
  }

  private fail(user: string, addr: string | null): void {
    const t = this.now();
    this.bump(this.users, user, this.s.authFailuresPerUser, t);
    if (addr) this.bump(this.addrs, addr, this.s.authFailuresPerAddress, t);
  }

  private bump(map: Map<string, Counter>, key: string, limit: number, t: number): void {
    let c = map.get(key);
    if (!c || (t - c.since >= this.s.authFailureWindowSeconds * 1000 && c.lockedUntil <= t)) {
      c = { since: t, failures: 0, lockedUntil: 0 };
    }
    c.failures++;
    if (c.failures >= limit) {
      c.lockedUntil = t + this.s.authLockoutSeconds * 1000;
      // A fresh window starts when the lock ends.
      c.since = c.lockedUntil;
      c.failures = 0;
    }
    map.delete(key);
    map.set(key, c);
    if (map.size > MAX_ENTRIES) this.prune(map, t);
  }

  /** Drops expired entries, then the oldest ones (Map keeps insertion order). */
  private prune(map: Map<string, Counter>, t: number): void {
    const windowMs = this.s.authFailureWindowSeconds * 1000;
    for (const [k, c] of map) if (c.lockedUntil <= t && t - c.since >= windowMs) map.delete(k);
    for (const k of map.keys()) {
      if (map.size <= MAX_ENTRIES * 0.9) break;
      map.delete(k);
    }
  }
}
