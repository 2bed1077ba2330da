import { EstcaError } from "../errors.ts";
import type { Db } from "./db.ts";
import { wrapWriteError } from "./db.ts";

/** How long a best-effort write may wait for others to share its commit. */
const DEFER_MS = 20;

interface Pending {
  fn: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit. With synchronous=FULL every COMMIT waits for an fsync of the WAL, and
 * better-sqlite3 waits on the event loop's thread, so one commit per certificate caps
 * throughput at the disk's fsync rate and stalls every other request meanwhile. Writes handed in
 * during one turn of the event loop are committed together in ONE transaction at the next
 * `setImmediate`: concurrent enrollments share a single fsync.
 *
 * Durability is unchanged: a `run()` promise settles only after the COMMIT that holds its write
 * has returned. Each write runs in its own SAVEPOINT, so one that throws is rolled back alone
 * and its caller gets the error while the others commit.
 */
export class CommitQueue {
  private pending: Pending[] = [];
  private scheduled = false;
  private deferTimer: NodeJS.Timeout | null = null;

  constructor(private readonly db: Db) {}

  /** Runs `fn` inside the next group commit; resolves with its result once that is durable. */
  run<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      this.schedule();
    });
  }

  /**
   * A best-effort write (the request log) that nobody waits for: it joins the next group commit.
   * A failure is dropped, as the caller asked.
   */
  defer(fn: () => void): void {
    this.pending.push({ fn, resolve: () => {}, reject: () => {} });
    // Nobody waits for these, so they wait a little for company: a busy /cacerts then pays one
    // fsync per DEFER_MS instead of one per turn of the event loop.
    if (!this.scheduled && !this.deferTimer) this.deferTimer = setTimeout(() => this.flush(), DEFER_MS);
  }

  /** Commits whatever is queued now: before a read that must see it, and at close. */
  flush(): void {
    this.scheduled = false;
    if (this.deferTimer) {
      clearTimeout(this.deferTimer);
      this.deferTimer = null;
    }
    if (!this.pending.length) return;
    const batch = this.pending;
    this.pending = [];
    const results: { ok: boolean; value: unknown }[] = [];
    try {
      this.db.transaction(() => {
        for (const p of batch) {
          try {
            // A nested better-sqlite3 transaction is a SAVEPOINT: a failing write undoes only itself.
            results.push({ ok: true, value: this.db.transaction(p.fn)() });
          } catch (e) {
            // SQLite rolls the whole transaction back itself after some errors (disk full, I/O):
            // then nothing of the batch will be committed, and every caller must hear so.
            if (!this.db.inTransaction) throw e;
            results.push({ ok: false, value: e });
          }
        }
      })();
    } catch (e) {
      // The COMMIT itself failed: none of the batch is durable, so every caller hears it.
      let err: unknown = e;
      if (!(e instanceof EstcaError)) {
        try {
          wrapWriteError(e);
        } catch (mapped) {
          err = mapped;
        }
      }
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => (results[i].ok ? p.resolve(results[i].value) : p.reject(results[i].value)));
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }
}
