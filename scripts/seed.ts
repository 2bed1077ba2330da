// Seeds a data directory's store with many certificates, for the scale checks of issue 6
// (docs/PERFORMANCE.md). Run it while the server is stopped:
//   node --import tsx scripts/seed.ts --data DIR [--count 1000000]
//
// What the rows are: the CA issues ONE real template certificate through the token. Every seeded
// row holds that template's DER with its serial number and its device name (in the subject and
// the SAN) replaced by the row's own, byte for byte at the same length, so each row carries a
// distinct, parseable certificate whose serial and subject match the row. They are NOT signed
// one by one (a million token signatures would take as long as the benchmark itself): their
// signatures do not verify, and their validity dates are the template's. They are storage load
// with realistic sizes, keys and columns, not certificates anyone holds. The rows' own columns
// are varied like a real fleet's: issued over the last 400 days for 365 days each (so about 9%
// are expired), 2% revoked and 3% superseded.
import "reflect-metadata";
import { createHash, randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import * as x509 from "@peculiar/x509";
import { openInstance } from "../src/instance/open.ts";

const { values: opt } = parseArgs({ options: { data: { type: "string" }, count: { type: "string", default: "1000000" } } });
if (!opt.data) {
  process.stderr.write("usage: seed.ts --data DIR [--count N]\n");
  process.exit(2);
}
const COUNT = Number(opt.count);
const PLACEHOLDER = "device-0000000";
const DAY = 86400_000;

function replaceAll(buf: Buffer, from: Buffer, to: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(from); i !== -1; i = buf.indexOf(from, i + to.length)) {
    to.copy(buf, i);
    n++;
  }
  return n;
}

async function main(): Promise<void> {
  const inst = openInstance(opt.data!);
  try {
    const { publicKey } = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", publicKey));
    const tmpl = await inst.ca.issue({
      subject: `CN=${PLACEHOLDER}, O=estca seed`,
      spki,
      keyAlgorithm: "ec",
      sans: [{ type: "dns", value: `${PLACEHOLDER}.fleet.example` }],
      validityDays: 365,
      keyUsage: ["digitalSignature"],
      extendedKeyUsage: ["clientAuth"],
      profile: "default",
      requester: "user:seed",
    });
    const tmplSerial = Buffer.from(tmpl.serial, "hex");
    const store = inst.store;
    const now = Date.now();
    const t0 = Date.now();
    const BATCH = 100_000;
    for (let start = 0; start < COUNT; start += BATCH) {
      store.bulkLoad(() => {
        for (let i = start; i < Math.min(start + BATCH, COUNT); i++) {
          const name = `device-${String(i + 1).padStart(7, "0")}`;
          const serialBytes = randomBytes(16);
          serialBytes[0] = (serialBytes[0] & 0x7f) | 0x40;
          const der = Buffer.from(tmpl.der);
          if (replaceAll(der, tmplSerial, serialBytes) !== 1 || replaceAll(der, Buffer.from(PLACEHOLDER), Buffer.from(name)) !== 2) {
            throw new Error("the template certificate does not hold its serial once and its name twice");
          }
          const serial = serialBytes.toString("hex");
          const createdAt = now - Math.floor(((i * 7919) % COUNT) / COUNT * 400 * DAY);
          store.certs.insert({
            serial,
            subject: `CN=${name}, O=estca seed`,
            sans: [`dns:${name}.fleet.example`],
            notBefore: createdAt - 60_000,
            notAfter: createdAt + 365 * DAY,
            issuer: inst.ca.issuer.cert.subject,
            issuerKey: inst.ca.issuer.ski,
            profile: "default",
            requester: `user:line-${i % 8}`,
            spkiSha256: createHash("sha256").update(serialBytes).digest("hex"),
            der,
            createdAt,
            kind: "ee",
          });
          if (i % 50 === 7) store.certs.revoke(serial, "keyCompromise", Math.min(createdAt + DAY, now - 60_000));
          else if (i % 50 === 11 || i % 50 === 23 || i % 50 === 37) store.certs.supersede(serial, "0");
        }
      });
      process.stderr.write(`seed: ${start + BATCH} rows, ${Math.round((start + BATCH) / ((Date.now() - t0) / 1000))} rows/s\n`);
    }
    // Sanity: one seeded certificate parses and names its row.
    const probe = store.certs.list({ q: "device-0000001.fleet", limit: 1 }).items[0];
    const c = new x509.X509Certificate(new Uint8Array(probe.der));
    if (c.serialNumber.toLowerCase() !== probe.serial || !c.subject.includes("device-0000001")) throw new Error("seeded DER does not match its row");
    process.stdout.write(JSON.stringify({ seeded: COUNT, seconds: (Date.now() - t0) / 1000 }) + "\n");
  } finally {
    inst.close();
  }
}

main().catch((e) => {
  process.stderr.write(`seed failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
