import { Worker } from "node:worker_threads";
import { EstcaError, type ErrorKind } from "../errors.ts";
import { type ParsedCsr, parseAndVerifyCsr } from "./csr.ts";

/** Parses a CSR and checks its proof of possession; the result is trusted from then on. */
export interface CsrChecker {
  check(der: Buffer): Promise<ParsedCsr>;
  close(): Promise<void>;
}

/** On the calling thread: for the CLI, tests, and machines with one core. */
export function inlineCsrChecker(): CsrChecker {
  return {
    check: async (der) => parseAndVerifyCsr(der),
    close: async () => {},
  };
}

interface Thread {
  worker: Worker;
  ready: boolean;
  dead: boolean;
  pending: Map<number, { der: Buffer; resolve: (c: ParsedCsr) => void; reject: (e: unknown) => void }>;
}

/**
 * CSR parsing and signature checking in worker threads. They are the largest share of an
 * enrollment's CPU (asn1js, then OpenSSL decoding the key) and need nothing but the bytes, so
 * they are what lets a second core help while serial numbers, signing and SQLite writes stay on
 * the main thread (docs/PERFORMANCE.md).
 *
 * Nothing is lost to a thread: until one is ready, and for every request a thread held when it
 * died, the check runs on the main thread instead; a dead thread is replaced.
 */
export class CsrThreadPool implements CsrChecker {
  private readonly threads: Thread[] = [];
  private nextId = 1;
  private closed = false;

  constructor(size: number, private readonly onThreadError: (e: unknown) => void = () => {}) {
    for (let i = 0; i < size; i++) this.threads.push(this.spawn());
  }

  async check(der: Buffer): Promise<ParsedCsr> {
    let best: Thread | undefined;
    for (const t of this.threads) if (t.ready && (!best || t.pending.size < best.pending.size)) best = t;
    if (!best) return parseAndVerifyCsr(der);
    const id = this.nextId++;
    const t = best;
    return new Promise<ParsedCsr>((resolve, reject) => {
      t.pending.set(id, { der, resolve, reject });
      t.worker.postMessage({ id, der });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  private spawn(): Thread {
    // Worker threads do not inherit tsx's loader when it was registered from code (bin/estca.js),
    // so the thread registers it before importing its TypeScript body.
    const api = import.meta.resolve("tsx/esm/api");
    const body = new URL("./csr-thread.ts", import.meta.url).href;
    const worker = new Worker(`import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(body)}); });`, {
      eval: true,
      name: "estca-csr",
      // A thread parses one small CSR at a time and keeps nothing: small heap limits bound what
      // its isolate may take, at no measurable cost in speed (docs/PERFORMANCE.md, RSS).
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 },
    });
    worker.unref();
    const t: Thread = { worker, ready: false, dead: false, pending: new Map() };
    worker.on("message", (m: { ready?: true; id?: number; csr?: ParsedCsr; error?: { estca: boolean; kind: string; message: string } }) => {
      if (m.ready) {
        t.ready = true;
        return;
      }
      const p = t.pending.get(m.id!);
      if (!p) return;
      t.pending.delete(m.id!);
      if (m.csr) p.resolve(revive(m.csr));
      else if (m.error?.estca) p.reject(new EstcaError(m.error.kind as ErrorKind, m.error.message));
      else p.reject(new Error(m.error?.message ?? "CSR thread failed"));
    });
    const lost = (e: unknown) => {
      if (t.dead) return;
      t.dead = true;
      t.ready = false;
      for (const p of t.pending.values()) {
        try {
          p.resolve(parseAndVerifyCsr(p.der));
        } catch (err) {
          p.reject(err);
        }
      }
      t.pending.clear();
      if (this.closed) return;
      this.onThreadError(e);
      const i = this.threads.indexOf(t);
      if (i >= 0) setTimeout(() => !this.closed && (this.threads[i] = this.spawn()), 1000).unref();
    };
    worker.on("error", lost);
    worker.on("exit", (code) => lost(new Error(`CSR thread exited with code ${code}`)));
    return t;
  }
}

/** Structured clone turns Buffers into plain Uint8Arrays; the rest of estca expects Buffers. */
function revive(c: ParsedCsr): ParsedCsr {
  const b = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  return {
    ...c,
    der: b(c.der),
    subjectDer: b(c.subjectDer),
    spki: b(c.spki),
    signatureAlgorithmDer: b(c.signatureAlgorithmDer),
    tbs: b(c.tbs),
    signature: b(c.signature),
    attributes: c.attributes.map((a) => ({ type: a.type, valuesDer: a.valuesDer.map(b) })),
  };
}
