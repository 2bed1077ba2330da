// Ceiling 1: how fast the token signs. ECDSA P-256 (CKM_ECDSA over a SHA-256 digest, exactly what
// src/hsm/pkcs11-key-manager.ts does per certificate) through pkcs11js, one session, one process,
// with the CA key of the bench's data directory. Prints one JSON line.
// Usage: node --import tsx scripts/bench/sign-ceiling.ts DATA_DIR SECONDS
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import pkcs11js from "pkcs11js";

const [dir, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 5);
process.env.SOFTHSM2_CONF = join(dir, "softhsm2.conf");
const pin = readFileSync(join(dir, "hsm-pin"), "utf8").trim();

const p11 = new pkcs11js.PKCS11();
p11.load("/usr/lib/softhsm/libsofthsm2.so");
p11.C_Initialize();
const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === "estca");
if (!slot) throw new Error("no token labelled estca");
const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
p11.C_Login(session, pkcs11js.CKU_USER, pin);
p11.C_FindObjectsInit(session, [
  { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
  { type: pkcs11js.CKA_LABEL, value: "estca-root-1" },
]);
const key = p11.C_FindObjects(session);
p11.C_FindObjectsFinal(session);
if (!key) throw new Error("no key estca-root-1 in the token");

const digest = createHash("sha256").update("a certificate's TBS bytes").digest();
const out = Buffer.alloc(64);
// Warm up, then count signatures in the time window.
for (let i = 0; i < 200; i++) {
  p11.C_SignInit(session, { mechanism: pkcs11js.CKM_ECDSA }, key);
  p11.C_Sign(session, digest, out);
}
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const until = t0 + BigInt(Math.round(seconds * 1e9));
let n = 0;
let now = t0;
while (now < until) {
  for (let i = 0; i < 100; i++) {
    p11.C_SignInit(session, { mechanism: pkcs11js.CKM_ECDSA }, key);
    p11.C_Sign(session, digest, out);
  }
  n += 100;
  now = process.hrtime.bigint();
}
const elapsed = Number(now - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
p11.C_Logout(session);
p11.C_CloseSession(session);
p11.C_Finalize();
process.stdout.write(JSON.stringify({ signatures: n, seconds: elapsed, perSecond: n / elapsed, cpuCores: (cpu.user + cpu.system) / 1e6 / elapsed }) + "\n");
