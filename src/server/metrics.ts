import cluster from "node:cluster";
import { randomUUID } from "node:crypto";
import Router from "@koa/router";
import type Koa from "koa";
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { KeyManager } from "../hsm/key-manager.ts";
import type { RequestLogEntry, Store } from "../store/index.ts";
import type { Services } from "./services.ts";

/** Operations after which a certificate may have been issued, so their duration is issuance latency. */
const ISSUING_OPERATIONS = new Set(["simpleenroll", "simplereenroll", "serverkeygen", "fullcmc"]);

/**
 * The Prometheus metrics of one server. A registry of its own (not prom-client's global one),
 * so that two servers in one process, or a restart in tests, never share counters.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly estRequests: Counter<"operation" | "status">;
  private readonly issuance: Histogram<"operation">;
  private readonly hsmSign: Histogram<"key_type" | "hash">;
  readonly adminLogins: Counter<"result">;

  constructor(store: Store) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "estca_" });
    this.estRequests = new Counter({
      name: "estca_est_requests_total",
      help: "EST requests by operation and HTTP status",
      labelNames: ["operation", "status"],
      registers,
    });
    this.issuance = new Histogram({
      name: "estca_issuance_duration_seconds",
      help: "Time from the start of an EST request to the issued certificate being sent",
      labelNames: ["operation"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.hsmSign = new Histogram({
      name: "estca_hsm_sign_duration_seconds",
      help: "Time the token takes to sign (certificates, CRLs, OCSP responses)",
      labelNames: ["key_type", "hash"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    this.adminLogins = new Counter({
      name: "estca_admin_logins_total",
      help: "Admin UI login attempts by result (ok, refused, throttled)",
      labelNames: ["result"],
      registers,
    });
    // Read from the store at scrape time: the store is the truth, also for changes made by the CLI.
    // Every worker reads the same store, so across workers the first answer is the answer.
    new Gauge({
      name: "estca_certificates",
      help: "End-entity certificates by status (expiring_30d is a subset of valid)",
      labelNames: ["status"],
      aggregator: "first",
      registers,
      collect() {
        const c = store.certs.counts();
        this.set({ status: "valid" }, c.valid);
        this.set({ status: "revoked" }, c.revoked);
        this.set({ status: "superseded" }, c.superseded);
        this.set({ status: "expired" }, c.expired);
        this.set({ status: "expiring_30d" }, c.expiringSoon);
      },
    });
    new Gauge({
      name: "estca_enrollments_pending",
      help: "Enrollment requests waiting for an administrator's approval",
      aggregator: "first",
      registers,
      collect() {
        this.set(store.enrollments.countPending());
      },
    });
    // In a worker (--workers), answer the primary's requests for this registry, so that any
    // worker's /metrics can serve the sum over all of them (see serveClusterMetrics).
    if (cluster.isWorker) {
      AggregatorRegistry.setRegistries(this.registry);
      new AggregatorRegistry();
    }
  }

  /** The metrics text: this process's, or with --workers the aggregate of every worker. */
  async text(): Promise<string> {
    if (!cluster.isWorker || !process.send) return this.registry.metrics();
    const id = randomUUID();
    const got = await new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => finish(null), 6000);
      const onMessage = (m: { type?: string; id?: string; text?: string | null }) => {
        if (m?.type === "estca-metrics-res" && m.id === id) finish(m.text ?? null);
      };
      const finish = (t: string | null) => {
        clearTimeout(timer);
        process.off("message", onMessage);
        resolve(t);
      };
      process.on("message", onMessage);
      process.send!({ type: "estca-metrics-req", id });
    });
    // Should the primary not answer, this worker's own numbers are better than no answer.
    return got ?? this.registry.metrics();
  }

  observeEst(e: RequestLogEntry): void {
    this.estRequests.inc({ operation: e.operation, status: String(e.status) });
    if (e.serial && ISSUING_OPERATIONS.has(e.operation) && e.durationMs !== null) {
      this.issuance.observe({ operation: e.operation }, e.durationMs / 1000);
    }
  }

  /**
   * Times every signature the token makes. It decorates the one KeyManager object in place, so the
   * CA (which already holds it) is measured too, and hsm/ itself knows nothing about metrics.
   */
  instrument(km: KeyManager): void {
    const sign = km.sign.bind(km);
    const hist = this.hsmSign;
    km.sign = (ref, hash, data) => {
      const end = hist.startTimer({ key_type: ref.keyType, hash });
      try {
        return sign(ref, hash, data);
      } finally {
        end();
      }
    };
  }
}

/** GET /metrics in the Prometheus text format, on the plain HTTP port. */
export function mountMetrics(app: Koa, s: Services): void {
  const metrics = s.metrics;
  if (!metrics) return;
  const r = new Router();
  r.get("/metrics", async (ctx) => {
    ctx.set("Content-Type", metrics.registry.contentType);
    ctx.body = await metrics.text();
  });
  app.use(r.routes());
}

/**
 * In the primary of `estca start --workers N`: a worker asked for /metrics gets the metrics of
 * all workers, summed (gauges read from the store are taken once), through prom-client's
 * cluster aggregation over the IPC channel.
 */
export function serveClusterMetrics(): void {
  const agg = new AggregatorRegistry();
  cluster.on("message", (worker, m: { type?: string; id?: string }) => {
    if (m?.type !== "estca-metrics-req") return;
    agg.clusterMetrics().then(
      (text) => worker.send({ type: "estca-metrics-res", id: m.id, text }),
      () => worker.send({ type: "estca-metrics-res", id: m.id, text: null }),
    );
  });
}
