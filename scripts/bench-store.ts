// Times the store queries behind the web UI's certificate list, search and dashboard counts
// (CertificateRepo.list() and counts()) on a data directory, e.g. one seeded with scripts/seed.ts:
//   node --import tsx scripts/bench-store.ts --data DIR
// Each query runs 7 times; the median and the worst are printed, then one line of JSON.
import { parseArgs } from "node:util";
import { dataPaths } from "../src/config/paths.ts";
import type { CertQuery } from "../src/store/index.ts";
import { Store } from "../src/store/index.ts";

const { values: opt } = parseArgs({ options: { data: { type: "string" }, runs: { type: "string", default: "7" } } });
if (!opt.data) {
  process.stderr.write("usage: bench-store.ts --data DIR\n");
  process.exit(2);
}
const RUNS = Number(opt.runs);
const store = Store.open(dataPaths(opt.data).db);

function time<T>(fn: () => T): { medianMs: number; maxMs: number; result: T } {
  const ms: number[] = [];
  let result!: T;
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    result = fn();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { medianMs: Math.round(ms[ms.length >> 1] * 100) / 100, maxMs: Math.round(ms[ms.length - 1] * 100) / 100, result };
}

const total = store.certs.counts().issued;
const someSerial = store.certs.list({ limit: 1, offset: Math.floor(total / 2) }).items[0]?.serial ?? "40";
const cases: [string, CertQuery][] = [
  ["list newest first (UI default)", {}],
  ["list page 100", { offset: 5000 }],
  ["list oldest first", { order: "asc" }],
  ["list by subject", { sort: "subject", order: "asc" }],
  ["list by expiry", { sort: "expiry", order: "asc" }],
  ["list by serial", { sort: "serial" }],
  ["list by status", { sort: "status" }],
  ["filter valid", { status: "valid" }],
  ["filter revoked", { status: "revoked" }],
  ["filter superseded", { status: "superseded" }],
  ["filter expired", { status: "expired" }],
  ["filter expiring", { status: "expiring" }],
  ["search one device (subject)", { q: "device-0123457" }],
  ["search one SAN", { q: "device-0654321.fleet" }],
  ["search serial prefix", { q: someSerial.slice(0, 10) }],
  ["search a production line (1/8 of all)", { q: "line-3" }],
  ["search nothing matches", { q: "no-such-device" }],
  ["search 2 characters", { q: "zz" }],
  ["search + filter revoked", { q: "device-01", status: "revoked" }],
];

const out: Record<string, { medianMs: number; maxMs: number; total: number; items: number }> = {};
process.stdout.write(`${total} end-entity certificates in ${dataPaths(opt.data).db}\n`);
const c = time(() => store.certs.counts());
out["counts() (dashboard)"] = { medianMs: c.medianMs, maxMs: c.maxMs, total: c.result.issued, items: 0 };
for (const [name, q] of cases) {
  const r = time(() => store.certs.list(q));
  out[name] = { medianMs: r.medianMs, maxMs: r.maxMs, total: r.result.total, items: r.result.items.length };
}
for (const [name, r] of Object.entries(out)) {
  process.stdout.write(`${name.padEnd(42)} ${String(r.medianMs).padStart(9)} ms median ${String(r.maxMs).padStart(9)} ms worst   total ${r.total}\n`);
}
store.close();
process.stdout.write(JSON.stringify({ certificates: total, queries: out }) + "\n");
