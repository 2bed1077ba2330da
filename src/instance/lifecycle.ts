import { CrlPublisher } from "../ca/crl.ts";
import { type RolloverResult, beginRollover, claimJournal, crashPoint, endRollover, journalOwnerAlive, readJournal, releaseRollover, undoRollover } from "../ca/rollover.ts";
import { conflict } from "../errors.ts";
import type { KeyType } from "../hsm/key-manager.ts";
import type { Instance } from "./open.ts";
import { issueListenerCert, writeTrustAnchors } from "./tls.ts";

export type Recovery = "none" | "finished" | "undone" | "busy";

/** What the lifecycle needs of an instance; a server's Services has it too (for the admin UI). */
export type LifecycleContext = Pick<Instance, "ca" | "config" | "paths">;

/**
 * The steps of a rollover that live outside the store: a listener certificate under the new
 * key that chains to the old root through OldWithNew, ca.pem with both roots, the new key's
 * first CRL. Each is redone whole, so running this twice is harmless.
 */
export async function finishRollover(inst: LifecycleContext): Promise<void> {
  try {
    inst.ca.reload();
    await issueListenerCert(inst.ca, inst.config, inst.paths, inst.ca.listenerChain());
    crashPoint("listener");
    writeTrustAnchors(inst.ca, inst.paths);
    await new CrlPublisher(inst.ca, inst.config.crl).publish(inst.ca.issuer);
  } catch (e) {
    releaseRollover();
    throw e;
  }
  endRollover(inst.ca);
}

/** Finishes a rollover that committed, or undoes one that did not, if its process is gone. */
export async function recoverRollover(inst: LifecycleContext): Promise<Recovery> {
  if (!readJournal(inst.ca)) return "none";
  const j = claimJournal(inst.ca);
  if (!j) return "busy";
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
export async function rolloverInstance(inst: LifecycleContext, opts: { keyType?: KeyType; overlapDays?: number }): Promise<RolloverRun> {
  const j = readJournal(inst.ca);
  if (j) {
    if (journalOwnerAlive(j)) throw conflict(`a rollover to generation ${j.generation} is running in process ${j.pid}; wait for it to end`);
    const what = await recoverRollover(inst);
    if (what === "busy" || what === "none") throw conflict(`another process took over the interrupted rollover to generation ${j.generation}; run \`estca status\` to see it end`);
    return { recovered: { what, generation: j.generation } };
  }
  const result = await beginRollover(inst.ca, {
    keyType: opts.keyType ?? inst.config.ca.keyType,
    validityDays: inst.config.ca.validityDays,
    overlapDays: opts.overlapDays,
  });
  await finishRollover(inst);
  return { result };
}
