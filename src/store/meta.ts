import type { Db } from "./db.ts";
import { wrapWriteError } from "./db.ts";

/** Small named facts about the instance (rollover journal, schema notes). */
export class MetaRepo {
  constructor(private readonly db: Db) {}

  get(key: string): string | null {
    const r = this.db.prepare(`SELECT value FROM meta WHERE key = ?`).get(key) as { value: string } | undefined;
    return r?.value ?? null;
  }

  set(key: string, value: string): void {
    try {
      this.db.prepare(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`).run(key, value);
    } catch (e) {
      wrapWriteError(e);
    }
  }

  /** Sets `key` only if it still holds `expected`: lets one of several processes claim a job. */
  compareAndSet(key: string, expected: string, value: string): boolean {
    try {
      return this.db.prepare(`UPDATE meta SET value = ? WHERE key = ? AND value = ?`).run(value, key, expected).changes === 1;
    } catch (e) {
      return wrapWriteError(e);
    }
  }

  delete(key: string): void {
    try {
      this.db.prepare(`DELETE FROM meta WHERE key = ?`).run(key);
    } catch (e) {
      wrapWriteError(e);
    }
  }
}
