import { CrlPublisher } from "../ca/crl.ts";
import { type RolloverResult, beginRollover, crashPoint, endRollover, journalOwnerAlive, readJournal, undoRollover } from "../ca/rollover.ts";
import { conflict } from "../errors.ts";
import type { KeyType } from "../hsm/key-manager.ts";
import type { Instance } from "./open.ts";
import { issueListenerCert, writeTrustAnchors } from "./tls.ts";

export type Recovery = "none" | "finished" | "undone" | "busy";

/**
 * The steps of a rollover that live outside the store: a listener certificate under the new
 * key that chains to the old root through OldWithNew, ca.pem with both roots, the new key's
 * first CRL. Each is redone whole, so running this twice is harmless.
 */
export async function finishRollover(inst: Instance): Promise<void> {
  inst.ca.reload();
  await issueListenerCert(inst.ca, inst.config, inst.paths, inst.ca.listenerChain());
  crashPoint("listener");
  writeTrustAnchors(inst.ca, inst.paths);
  await new CrlPublisher(inst.ca, inst.config.crl).publish(inst.ca.issuer);
  endRollover(inst.ca);
}

/** Finishes a rollover that committed, or undoes one that did not, if its process is gone. */
export async function recoverRollover(inst: Instance): Promise<Recovery> {
  const j = readJournal(inst.ca);
  if (!j) return "none";
  if (journalOwnerAlive(j)) return "busy";
  if (j.state === "committed") {
    await finishRollover(inst);
    return "finished";
  }
  undoRollover(inst.ca, j);
  return "undone";
}

export interface RolloverRun {
  /** Set when an interrupted rollover was found and dealt with instead of starting a new one. */
  recovered?: { what: Exclude<Recovery, "none" | "busy">; generation: number };
  result?: RolloverResult;
}

/** `estca rollover`: a new root key and its links, or first the end of an interrupted one. */
export async function rolloverInstance(inst: Instance, opts: { keyType?: KeyType; overlapDays?: number }): Promise<RolloverRun> {
  const j = readJournal(inst.ca);
  if (j) {
    if (journalOwnerAlive(j)) throw conflict(`a rollover to generation ${j.generation} is running in process ${j.pid}; wait for it to end`);
    const what = await recoverRollover(inst);
    return { recovered: { what: what as "finished" | "undone", generation: j.generation } };
  }
  const result = await beginRollover(inst.ca, {
    keyType: opts.keyType ?? inst.config.ca.keyType,
    validityDays: inst.config.ca.validityDays,
    overlapDays: opts.overlapDays,
  });
  await finishRollover(inst);
  return { result };
}
