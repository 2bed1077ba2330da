import type { Store } from "../store/index.ts";

/**
 * Slows down password guessing on the admin sign-in. Failures are counted per account and
 * address and, with a higher limit, per address alone (one host trying many accounts). Once a
 * key has `maxFailures` failures inside the window it is locked from its latest failure on; each
 * further failure doubles the lock, up to `maxLockMs`. A throttled attempt is refused before its
 * password is even checked, and is not counted. The failures are in the store, so every server
 * process (--workers) sees all of them.
 */
export interface ThrottleOptions {
  maxFailures: number;
  maxFailuresPerAddress: number;
  windowMs: number;
  lockMs: number;
  maxLockMs: number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = {
  maxFailures: 5,
  maxFailuresPerAddress: 20,
  windowMs: 15 * 60_000,
  lockMs: 60_000,
  maxLockMs: 15 * 60_000,
};

export class LoginThrottle {
  constructor(
    private readonly store: Store,
    private readonly o: ThrottleOptions = DEFAULT_THROTTLE,
  ) {}

  private keys(user: string, addr: string): [string, number][] {
    return [
      [`u:${user.toLowerCase()}@${addr}`, this.o.maxFailures],
      [`a:${addr}`, this.o.maxFailuresPerAddress],
    ];
  }

  /** Seconds the caller must wait before trying again; 0 if it may try now. */
  retryAfter(user: string, addr: string, now = Date.now()): number {
    let until = 0;
    for (const [key, max] of this.keys(user, addr)) {
      const { count, last } = this.store.adminSessions.failures(key, now - this.o.windowMs);
      const over = count - max;
      if (over >= 0 && last !== null) until = Math.max(until, last + Math.min(this.o.lockMs * 2 ** over, this.o.maxLockMs));
    }
    return until > now ? Math.ceil((until - now) / 1000) : 0;
  }

  fail(user: string, addr: string, now = Date.now()): void {
    this.store.adminSessions.addFailure(
      this.keys(user, addr).map(([k]) => k),
      now,
      now - this.o.windowMs,
    );
  }

  /** A correct password clears the account's record (not the address's: it may be guessing others). */
  succeed(user: string, addr: string): void {
    this.store.adminSessions.clearFailures(this.keys(user, addr)[0][0]);
  }
}
