import { webcrypto } from "node:crypto";
import * as pkijs from "pkijs";
import type { HashName, KeyManager, KeyRef, KeyType } from "../hsm/key-manager.ts";
import { isEcKeyType } from "../hsm/key-manager.ts";

/**
 * A CryptoKey look-alike that names a key inside the token. @peculiar/x509 and pkijs accept it
 * because they only read `algorithm`, `type`, `usages` and `extractable`; the bytes of the key
 * never exist outside the token.
 */
export class HsmPrivateKey {
  readonly type = "private" as const;
  readonly extractable = false;
  readonly usages: KeyUsage[] = ["sign"];
  readonly algorithm: EcKeyAlgorithm | RsaHashedKeyAlgorithm;
  constructor(
    readonly ref: KeyRef,
    readonly hash: HashName,
  ) {
    this.algorithm = webAlgorithmOf(ref.keyType, hash);
  }
}

export function webAlgorithmOf(t: KeyType, hash: HashName): EcKeyAlgorithm | RsaHashedKeyAlgorithm {
  if (isEcKeyType(t)) return { name: "ECDSA", namedCurve: t === "ec-p256" ? "P-256" : "P-384" };
  return {
    name: "RSASSA-PKCS1-v1_5",
    hash: { name: hash },
    modulusLength: Number(t.split("-")[1]),
    publicExponent: new Uint8Array([1, 0, 1]),
  };
}

/** The signing algorithm to hand to generators alongside an HsmPrivateKey. */
export function signingAlgorithmOf(key: HsmPrivateKey): Algorithm & { hash: string } {
  return { name: key.algorithm.name, hash: key.hash };
}

function hashName(alg: AlgorithmIdentifier | EcdsaParams | RsaPssParams, key: HsmPrivateKey): HashName {
  const h = typeof alg === "object" && "hash" in alg ? (alg as EcdsaParams).hash : undefined;
  if (!h) return key.hash;
  return (typeof h === "string" ? h : h.name).toUpperCase() as HashName;
}

/**
 * A WebCrypto `Crypto` whose sign() goes to the token for HsmPrivateKey and to Node for
 * everything else. Passing it to the x509 and pkijs generators lets them build certificates,
 * CRLs, OCSP responses and CMS exactly as they would with a software key.
 */
export function hsmCrypto(km: KeyManager): Crypto {
  const subtle = webcrypto.subtle;
  const hsmSubtle = Object.create(subtle) as SubtleCrypto;
  hsmSubtle.sign = (async (alg: AlgorithmIdentifier, key: CryptoKey, data: BufferSource): Promise<ArrayBuffer> => {
    if (key instanceof HsmPrivateKey) {
      const bytes = ArrayBuffer.isView(data)
        ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
        : new Uint8Array(data as ArrayBuffer);
      const sig = km.sign(key.ref, hashName(alg, key), bytes);
      return sig.buffer.slice(sig.byteOffset, sig.byteOffset + sig.byteLength) as ArrayBuffer;
    }
    return subtle.sign(alg, key, data);
  }) as SubtleCrypto["sign"];
  // Node's SubtleCrypto methods check their receiver, so bind the ones we pass through.
  for (const m of ["digest", "verify", "importKey", "exportKey", "generateKey", "encrypt", "decrypt", "deriveBits", "deriveKey", "wrapKey", "unwrapKey"] as const) {
    (hsmSubtle as unknown as Record<string, unknown>)[m] = (subtle[m] as (...a: unknown[]) => unknown).bind(subtle);
  }
  return {
    subtle: hsmSubtle,
    getRandomValues: webcrypto.getRandomValues.bind(webcrypto),
    randomUUID: webcrypto.randomUUID.bind(webcrypto),
  } as unknown as Crypto;
}

/** A pkijs engine on the same Crypto, for OCSP responses and CMS SignedData. */
export function hsmPkijsEngine(crypto: Crypto): pkijs.CryptoEngine {
  return new pkijs.CryptoEngine({ name: "estca-hsm", crypto });
}
