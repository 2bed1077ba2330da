/**
 * Slows down password guessing on the admin login. Failures are counted per account and address
 * and, with a higher limit, per address alone (one host trying many accounts). Once a key has
 * `maxFailures` failures inside the window it is locked; each further failure doubles the lock,
 * up to `maxLockMs`. A throttled attempt is refused before its password is even checked.
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

interface Entry {
  failures: number[];
  lockedUntil: number;
}

const MAX_KEYS = 10_000;

export class LoginThrottle {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly o: ThrottleOptions = DEFAULT_THROTTLE) {}

  private keys(user: string, addr: string): [string, number][] {
    return [
      [`u:${user.toLowerCase()}@${addr}`, this.o.maxFailures],
      [`a:${addr}`, this.o.maxFailuresPerAddress],
    ];
  }

  /** Seconds the caller must wait before trying again; 0 if it may try now. */
  retryAfter(user: string, addr: string, now = Date.now()): number {
    let until = 0;
    for (const [k] of this.keys(user, addr)) until = Math.max(until, this.entries.get(k)?.lockedUntil ?? 0);
    return until > now ? Math.ceil((until - now) / 1000) : 0;
  }

  fail(user: string, addr: string, now = Date.now()): void {
    if (this.entries.size >= MAX_KEYS) this.prune(now);
    for (const [k, max] of this.keys(user, addr)) {
      const e = this.entries.get(k) ?? { failures: [], lockedUntil: 0 };
      e.failures = e.failures.filter((t) => t > now - this.o.windowMs);
      e.failures.push(now);
      const over = e.failures.length - max;
      if (over >= 0) e.lockedUntil = now + Math.min(this.o.lockMs * 2 ** over, this.o.maxLockMs);
      this.entries.set(k, e);
    }
  }

  /** A correct password clears the account's record (not the address's: it may be guessing others). */
  succeed(user: string, addr: string): void {
    this.entries.delete(this.keys(user, addr)[0][0]);
  }

  private prune(now: number): void {
    for (const [k, e] of this.entries) {
      if (e.lockedUntil <= now && e.failures.every((t) => t <= now - this.o.windowMs)) this.entries.delete(k);
    }
    if (this.entries.size >= MAX_KEYS) this.entries.clear();
  }
}
