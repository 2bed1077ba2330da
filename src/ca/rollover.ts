import "reflect-metadata";
import { readFileSync } from "node:fs";
import type * as x509 from "@peculiar/x509";
import { conflict, configError, unavailable } from "../errors.ts";
import { type KeyType, defaultHashFor } from "../hsm/key-manager.ts";
import { type CertificateAuthority, caRecord, rootKeyLabel } from "./authority.ts";
import { keyIdentifier } from "./extensions.ts";
import { HsmPrivateKey } from "./hsm-crypto.ts";

/**
 * RFC 4210 section 4.4 root CA key update.
 *
 * The journal (meta key "rollover") makes it atomic. Before anything touches the token it says
 * "started"; the three certificates, the old root's retirement and the journal's "committed"
 * are one SQLite transaction. So after a crash:
 *   - "started": the store is as before; the new key, if it was made, is deleted (undo);
 *   - "committed": the store is the new state; only the files outside it (listener
 *     certificate, ca.pem, first CRL) are redone (finish).
 */
export const JOURNAL_KEY = "rollover";

export interface RolloverJournal {
  state: "started" | "committed";
  generation: number;
  previousGeneration: number;
  keyLabel: string;
  keyType: KeyType;
  /** The process working on it: pid plus its start time, as pids are reused (pid 1 in every container). */
  pid: number;
  procStart: string | null;
  startedAt: string;
}

export interface RolloverOptions {
  keyType: KeyType;
  validityDays: number;
  /** How long the links (and so old-root-only clients) are served; at most until the old root expires. */
  overlapDays?: number;
}

export interface RolloverResult {
  generation: number;
  newRoot: x509.X509Certificate;
  oldWithNew: x509.X509Certificate | null;
  newWithOld: x509.X509Certificate | null;
}

/** Where ESTCA_TEST_CRASH_AT can stop the process, in order. Documented in docs/LIFECYCLE.md. */
export const CRASH_POINTS = ["started", "keygen", "signed", "committed", "listener"] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

/**
 * A test hook: with ESTCA_TEST_CRASH_AT=<point> the process kills itself with SIGKILL at that
 * point, exactly as `kill -9` would, so tests can prove that recovery works from each step.
 */
export function crashPoint(point: CrashPoint): void {
  if (process.env.ESTCA_TEST_CRASH_AT === point) process.kill(process.pid, "SIGKILL");
}

const CLOCK_SKEW_MS = 60_000;

export function readJournal(ca: CertificateAuthority): RolloverJournal | null {
  const raw = ca.store.meta.get(JOURNAL_KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as RolloverJournal;
  } catch {
    throw configError(`the rollover journal (meta "${JOURNAL_KEY}") is unreadable: ${raw.slice(0, 80)}`);
  }
}

/** Start time of a process in clock ticks since boot (Linux), or null where /proc is not there. */
function procStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22; the command name (field 2) may hold spaces, so count from its closing parenthesis.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

const ME = { pid: process.pid, procStart: procStart(process.pid) };

/** True while this process is between the journal's creation and its end. */
let workingHere = false;

/** Whether the process that owns the journal is still at work on it (and so must be left alone). */
export function journalOwnerAlive(j: RolloverJournal): boolean {
  if (j.pid === ME.pid && j.procStart === ME.procStart) return workingHere;
  try {
    process.kill(j.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  // Alive, unless the pid now belongs to another process.
  return j.procStart === null || procStart(j.pid) === null || procStart(j.pid) === j.procStart;
}

/**
 * Takes over an orphaned journal for this process. Only one of several processes (server
 * workers, a CLI) wins; the others get null and leave it alone.
 */
export function claimJournal(ca: CertificateAuthority): RolloverJournal | null {
  const raw = ca.store.meta.get(JOURNAL_KEY);
  if (!raw) return null;
  const j = readJournal(ca)!;
  if (journalOwnerAlive(j)) return null;
  const mine: RolloverJournal = { ...j, ...ME };
  if (!ca.store.meta.compareAndSet(JOURNAL_KEY, raw, JSON.stringify(mine))) return null;
  workingHere = true;
  return mine;
}

/**
 * Makes the new key and the three certificates and commits them. From the commit on, new
 * certificates are issued under the new key. The caller then runs `finish` (files outside the store).
 */
export async function beginRollover(ca: CertificateAuthority, opts: RolloverOptions): Promise<RolloverResult> {
  const pending = readJournal(ca);
  if (pending) throw conflict(`a rollover to generation ${pending.generation} is already ${pending.state} (process ${pending.pid}); it must be finished first`);
  const old = ca.issuer;
  const generation = Math.max(...ca.store.caCerts.all().map((r) => r.generation)) + 1;
  const keyLabel = rootKeyLabel(generation);
  if (ca.km.findKey(keyLabel)) throw conflict(`the token already holds a key labelled "${keyLabel}" that no rollover journal accounts for: inspect the token before rolling over`);

  const journal: RolloverJournal = {
    state: "started",
    generation,
    previousGeneration: old.generation,
    keyLabel,
    keyType: opts.keyType,
    ...ME,
    startedAt: new Date().toISOString(),
  };
  ca.store.meta.set(JOURNAL_KEY, JSON.stringify(journal));
  workingHere = true;
  try {
    return await makeAndCommit(ca, journal, opts);
  } catch (e) {
    // Nothing is committed unless the journal says so: put the old state back at once.
    const now = readJournal(ca);
    if (now?.state === "started") undoRollover(ca, now);
    else workingHere = false;
    throw e;
  }
}

async function makeAndCommit(ca: CertificateAuthority, journal: RolloverJournal, opts: RolloverOptions): Promise<RolloverResult> {
  const { generation, keyLabel } = journal;
  const old = ca.issuer;
  crashPoint("started");

  const ref = ca.km.generateKeyPair(keyLabel, journal.keyType);
  crashPoint("keygen");
  const newKey = new HsmPrivateKey(ref, defaultHashFor(ref.keyType));
  const newSpki = new Uint8Array(ca.km.publicKeySpki(ref));
  const oldSpki = new Uint8Array(old.cert.publicKey.rawData);
  const newSki = keyIdentifier(newSpki);
  const name = old.cert.subjectName;
  const now = Date.now();
  const notBefore = new Date(now - CLOCK_SKEW_MS);

  const newWithNew = await ca.signCaCert({
    subject: name,
    issuerName: name,
    spki: newSpki,
    signer: newKey,
    issuerSki: newSki,
    notBefore,
    notAfter: new Date(now + opts.validityDays * 86400_000),
  });
  // The links live as long as the old root (RFC 4210 4.4), or shorter if the operator says so.
  const oldEnd = old.cert.notAfter.getTime();
  const linkEnd = Math.min(oldEnd, opts.overlapDays !== undefined ? now + opts.overlapDays * 86400_000 : oldEnd);
  let oldWithNew: x509.X509Certificate | null = null;
  let newWithOld: x509.X509Certificate | null = null;
  if (linkEnd > now) {
    oldWithNew = await ca.signCaCert({ subject: name, issuerName: name, spki: newSpki, signer: old.key, issuerSki: old.ski, notBefore, notAfter: new Date(linkEnd) });
    newWithOld = await ca.signCaCert({ subject: name, issuerName: name, spki: oldSpki, signer: newKey, issuerSki: newSki, notBefore, notAfter: new Date(linkEnd) });
  }
  crashPoint("signed");

  ca.store.transaction(() => {
    const s = ca.store;
    s.caCerts.add(caRecord(newWithNew, { generation, role: "root", status: "active", keyLabel, keyType: ref.keyType }), now);
    if (oldWithNew) s.caCerts.add(caRecord(oldWithNew, { generation, role: "oldWithNew", status: "active", keyLabel: null, keyType: null }), now);
    if (newWithOld) s.caCerts.add(caRecord(newWithOld, { generation, role: "newWithOld", status: "active", keyLabel: null, keyType: null }), now);
    // The old key stops issuing but keeps signing CRLs and OCSP answers for what it issued.
    s.caCerts.setStatus(old.record.id, "retired");
    for (const l of s.caCerts.all()) if ((l.role === "oldWithNew" || l.role === "newWithOld") && l.generation < generation && l.status === "active") s.caCerts.setStatus(l.id, "retired");
    s.meta.set(JOURNAL_KEY, JSON.stringify({ ...journal, state: "committed" }));
  });
  ca.reload();
  crashPoint("committed");
  return { generation, newRoot: newWithNew, oldWithNew, newWithOld };
}

/** Ends a committed rollover: the journal goes once the files outside the store are rewritten. */
export function endRollover(ca: CertificateAuthority): void {
  ca.store.meta.delete(JOURNAL_KEY);
  workingHere = false;
}

/** A committed rollover whose finishing failed here (a full disk, say) is left for a restart or the server's timer. */
export function releaseRollover(): void {
  workingHere = false;
}

/**
 * Undoes a rollover that never committed: deletes the new key from the token (if it was made)
 * and the journal. The store was not changed by it.
 */
export function undoRollover(ca: CertificateAuthority, j: RolloverJournal): void {
  if (j.state !== "started") throw unavailable(`cannot undo a ${j.state} rollover`);
  const committedRoot = ca.store.caCerts.all().find((r) => r.role === "root" && r.generation === j.generation);
  if (committedRoot) throw configError(`the journal says rollover ${j.generation} did not commit, yet its root is in the store: restore from a backup`);
  if (ca.km.findKey(j.keyLabel)) ca.km.deleteKey(j.keyLabel);
  ca.store.meta.delete(JOURNAL_KEY);
  workingHere = false;
  ca.reload();
}
