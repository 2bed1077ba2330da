import Database from "better-sqlite3";
import { chmodSync, existsSync, statSync } from "node:fs";
import { EstcaError, configError, messageOf } from "../errors.ts";
import { MIGRATIONS } from "./migrations.ts";

export type Db = Database.Database;

/**
 * Opens the store. WAL with synchronous=FULL makes a committed certificate survive power loss,
 * which is the promise estca makes before it sends a certificate to anyone.
 */
export function openDb(path: string, opts: { create: boolean }): Db {
  if (!opts.create && !existsSync(path)) {
    throw configError(`database ${path} is missing: restore it from a backup, or run \`estca init\` on an empty data directory`);
  }
  let db: Db;
  try {
    db = new Database(path, { fileMustExist: !opts.create });
    // An existing store without estca's schema (an emptied file, another program's database) is
    // refused before anything is written to it: migrating it would silently start a new CA store.
    if (!opts.create && (db.pragma("user_version", { simple: true }) as number) === 0) {
      throw configError(`database ${path} holds no estca data (${statSync(path).size} bytes, schema version 0): restore it from a backup; estca will not reset it`);
    }
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
    const check = db.pragma("quick_check", { simple: true });
    if (check !== "ok") throw new Error(`quick_check says ${String(check)}`);
  } catch (e) {
    if (e instanceof EstcaError) throw e;
    throw configError(`database ${path} is unreadable or corrupted (${messageOf(e).replace(/\s*\n\s*/g, "; ")}): restore it from a backup; estca will not reset it`);
  }
  try {
    chmodSync(path, 0o600);
  } catch {
    /* read-only file system: the open above already worked */
  }
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw configError(`database schema version ${current} is newer than this estca (${MIGRATIONS.length}): upgrade estca`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/** Maps SQLite's "can't write" family of errors to a 503, everything else passes through. */
export function wrapWriteError(e: unknown): never {
  const code = (e as { code?: string }).code ?? "";
  if (/^SQLITE_(READONLY|IOERR|FULL|CANTOPEN|BUSY|LOCKED|PERM)/.test(code)) {
    throw new EstcaError("unavailable", `the database cannot be written (${code}): check the data directory's disk and permissions`, { retryAfter: 10, cause: e });
  }
  throw e;
}
