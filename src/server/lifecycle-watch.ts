import { statSync } from "node:fs";
import { CrlPublisher } from "../ca/crl.ts";
import { onRevocation } from "../ca/revocation.ts";
import { messageOf } from "../errors.ts";
import type { Instance } from "../instance/open.ts";
import { recoverRollover } from "../instance/lifecycle.ts";
import type { Running } from "./start.ts";

/** How often a running server looks for rollovers and revocations made by another process (the CLI). */
export function pollIntervalMs(): number {
  const v = Number(process.env.ESTCA_LIFECYCLE_POLL_MS);
  return Number.isFinite(v) && v >= 100 ? v : 2000;
}

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Keeps a running server in step with the CA's lifecycle:
 * - a revocation in this process republishes that key's CRL at once;
 * - on a timer, it finishes a rollover whose process died, reloads the CA and the listener
 *   certificate when the CA certificates or the listener files changed (a rollover by the CLI),
 *   and republishes any CRL that misses a revocation (also one by the CLI) or nears nextUpdate.
 * The checks are a few tiny queries and two stat calls.
 */
export function watchLifecycle(inst: Instance, running: Running): { tick: () => Promise<void>; stop: () => void } {
  const { ca, store, paths } = inst;
  const log = running.services.log;
  const crls = new CrlPublisher(ca, inst.config.crl);
  const fingerprint = () => `${store.caCerts.fingerprint()}|${mtime(paths.tlsCert)}|${mtime(paths.tlsKey)}`;
  let seen = fingerprint();

  onRevocation(async (rec) => {
    const iss = ca.issuerBySki(rec.issuerKey);
    if (!iss) return;
    try {
      const crl = await crls.publish(iss);
      log.info({ serial: rec.serial, crl: crl.number, generation: iss.generation }, "certificate revoked; CRL republished");
    } catch (e) {
      // The revocation is committed; the timer publishes the CRL once the token answers again.
      log.warn({ err: messageOf(e), serial: rec.serial }, "certificate revoked; CRL not yet republished");
    }
  });

  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const r = await recoverRollover(inst);
      if (r === "finished" || r === "undone") log.warn({ recovery: r }, `an interrupted rollover was ${r}`);
      const now = fingerprint();
      if (now !== seen) {
        ca.reload();
        running.reloadTls();
        seen = now;
        log.info({ generation: ca.issuer.generation }, "CA certificates or listener certificate changed: reloaded");
      }
      for (const c of await crls.refreshDue()) log.info({ crl: c.number, issuerKey: c.issuerKey }, "CRL published");
    } catch (e) {
      // A half-written listener file or a token hiccup: the next tick tries again.
      log.warn({ err: messageOf(e) }, "lifecycle check failed; retrying");
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), pollIntervalMs());
  timer.unref();
  void tick();
  return { tick, stop: () => clearInterval(timer) };
}
