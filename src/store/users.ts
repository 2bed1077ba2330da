import type { Db } from "./db.ts";
import { wrapWriteError } from "./db.ts";

export type UserRole = "est" | "admin";

export interface UserRecord {
  name: string;
  passwordHash: string;
  labels: string[];
  role: UserRole;
  createdAt: number;
}

interface Row {
  name: string;
  password_hash: string;
  labels: string;
  role: UserRole;
  created_at: number;
}

const fromRow = (r: Row): UserRecord => ({
  name: r.name,
  passwordHash: r.password_hash,
  labels: JSON.parse(r.labels) as string[],
  role: r.role,
  createdAt: r.created_at,
});

export class UserRepo {
  constructor(private readonly db: Db) {}

  /** Returns false if a user of that name and role exists. */
  add(u: Omit<UserRecord, "createdAt">, now = Date.now()): boolean {
    try {
      this.db
        .prepare(`INSERT INTO users (name, password_hash, labels, role, created_at) VALUES (?, ?, ?, ?, ?)`)
        .run(`${u.role}:${u.name}`, u.passwordHash, JSON.stringify(u.labels), u.role, now);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") return false;
      return wrapWriteError(e);
    }
  }

  get(name: string, role: UserRole): UserRecord | null {
    const r = this.db.prepare(`SELECT * FROM users WHERE name = ?`).get(`${role}:${name}`) as Row | undefined;
    return r ? { ...fromRow(r), name } : null;
  }

  list(role: UserRole): UserRecord[] {
    return (this.db.prepare(`SELECT * FROM users WHERE role = ? ORDER BY name`).all(role) as Row[]).map((r) => ({
      ...fromRow(r),
      name: r.name.slice(role.length + 1),
    }));
  }

  remove(name: string, role: UserRole): boolean {
    try {
      return this.db.prepare(`DELETE FROM users WHERE name = ?`).run(`${role}:${name}`).changes === 1;
    } catch (e) {
      return wrapWriteError(e);
    }
  }

  setPassword(name: string, role: UserRole, passwordHash: string): boolean {
    try {
      return this.db.prepare(`UPDATE users SET password_hash = ? WHERE name = ?`).run(passwordHash, `${role}:${name}`).changes === 1;
    } catch (e) {
      return wrapWriteError(e);
    }
  }
}
