import cluster, { type Worker } from "node:cluster";
import { configError } from "../errors.ts";

/**
 * `estca start --workers N` (opt-in; docs/PERFORMANCE.md): N serving processes share the two
 * listening ports, so TLS, HTTP, CSR parsing and certificate building use every core. Each worker
 * is a whole estca server with its own token session and store connection. What must stay
 * correct across processes already is: serial numbers are 126 random bits with the primary key
 * as referee, SQLite in WAL mode serializes writers (busy_timeout), every certificate is
 * committed before its response, and the lifecycle watcher of each worker follows rollovers and
 * revocations through the store. Web UI sessions and sign-in throttling live in the store, and
 * the primary sums every worker's metrics. What stays per process: the verified-password cache
 * and the Basic-auth failure throttle (ra/throttle.ts).
 *
 * The primary serves nothing itself. It prints the banner once all workers listen, replaces a
 * worker that dies, and on SIGTERM/SIGINT stops them all gracefully before it exits.
 */

export interface ListeningMessage {
  type: "estca-listening";
  estUrl: string;
  httpUrl: string;
  uiUrl: string;
}

export function isWorker(): boolean {
  return cluster.isWorker;
}

/** Called by a worker once its listeners are up. */
export function reportListening(m: Omit<ListeningMessage, "type">): void {
  process.send?.({ type: "estca-listening", ...m } satisfies ListeningMessage);
}

export function superviseWorkers(n: number, banner: (m: ListeningMessage) => void): Promise<void> {
  return new Promise((_resolve, reject) => {
    let stopping = false;
    let ready = 0;
    let announced = false;
    const live = new Set<Worker>();
    const fork = () => {
      const w = cluster.fork();
      live.add(w);
      w.on("message", (m: ListeningMessage) => {
        if (m?.type !== "estca-listening") return;
        ready++;
        if (!announced && ready >= n) {
          announced = true;
          banner(m);
        }
      });
      w.on("exit", (code, signal) => {
        live.delete(w);
        if (stopping) {
          if (live.size === 0) {
            process.stdout.write("estca stopped\n");
            process.exit(0);
          }
          return;
        }
        if (!announced) {
          // A worker that cannot start (port in use, bad config) will not start on retry either.
          stopping = true;
          for (const o of live) o.kill("SIGTERM");
          reject(configError(`a worker exited during start-up (${signal ?? `exit ${code}`}); see its message above`));
          return;
        }
        process.stderr.write(`estca: worker ${w.process.pid} exited (${signal ?? `exit ${code}`}); starting another\n`);
        fork();
      });
    };
    const stop = () => {
      if (stopping) return;
      stopping = true;
      if (live.size === 0) process.exit(0);
      // Each worker finishes its requests in flight, closes its store and token, and exits.
      for (const w of live) w.process.kill("SIGTERM");
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    for (let i = 0; i < n; i++) fork();
  });
}
