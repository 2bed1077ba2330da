import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { EKU_NAMES, KEY_USAGES } from "../config/schema.ts";

export { keyIdentifier } from "../pki/certificate.ts";

const KU_FLAGS: Record<(typeof KEY_USAGES)[number], x509.KeyUsageFlags> = {
  digitalSignature: x509.KeyUsageFlags.digitalSignature,
  nonRepudiation: x509.KeyUsageFlags.nonRepudiation,
  keyEncipherment: x509.KeyUsageFlags.keyEncipherment,
  dataEncipherment: x509.KeyUsageFlags.dataEncipherment,
  keyAgreement: x509.KeyUsageFlags.keyAgreement,
  keyCertSign: x509.KeyUsageFlags.keyCertSign,
  cRLSign: x509.KeyUsageFlags.cRLSign,
  encipherOnly: x509.KeyUsageFlags.encipherOnly,
  decipherOnly: x509.KeyUsageFlags.decipherOnly,
};

/**
 * Key usages that make sense for the subject's key: an EC or Ed25519 key cannot encipher keys,
 * an RSA key cannot agree on one. The profile lists what it wants; this keeps certificates valid.
 */
export function keyUsageExtension(usages: readonly string[], keyAlgorithm: "rsa" | "ec" | "ed25519"): x509.KeyUsagesExtension | null {
  let flags = 0;
  for (const u of usages) {
    if (keyAlgorithm !== "rsa" && (u === "keyEncipherment" || u === "dataEncipherment")) continue;
    if (keyAlgorithm !== "ec" && (u === "keyAgreement" || u === "encipherOnly" || u === "decipherOnly")) continue;
    flags |= KU_FLAGS[u as keyof typeof KU_FLAGS] ?? 0;
  }
  return flags ? new x509.KeyUsagesExtension(flags, true) : null;
}

export function ekuOids(names: readonly string[]): string[] {
  return names.map((n) => EKU_NAMES[n] ?? n);
}

export function ekuExtension(names: readonly string[]): x509.ExtendedKeyUsageExtension | null {
  return names.length ? new x509.ExtendedKeyUsageExtension(ekuOids(names), false) : null;
}
