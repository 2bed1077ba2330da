// The narrow interface between the CA and whatever holds its private keys.
// Nothing outside hsm/ knows that PKCS#11 exists.

export const KEY_TYPES = ["ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export type HashName = "SHA-256" | "SHA-384" | "SHA-512";

export interface KeyRef {
  /** CKA_LABEL of both halves of the pair. */
  readonly label: string;
  readonly keyType: KeyType;
}

export interface KeyProtection {
  sensitive: boolean;
  extractable: boolean;
  alwaysSensitive: boolean;
  neverExtractable: boolean;
}

export interface TokenInfo {
  module: string;
  tokenLabel: string;
  manufacturer: string;
  model: string;
  serial: string;
}

export interface KeyManager {
  readonly info: TokenInfo;
  /** Generates a non-extractable, sensitive key pair inside the token. */
  generateKeyPair(label: string, keyType: KeyType): KeyRef;
  findKey(label: string): KeyRef | null;
  deleteKey(label: string): void;
  /** DER SubjectPublicKeyInfo of the pair's public half. */
  publicKeySpki(ref: KeyRef): Buffer;
  /**
   * Signs `data` with the private key. The result is in WebCrypto form: raw r||s for ECDSA,
   * the PKCS#1 v1.5 signature for RSA.
   */
  sign(ref: KeyRef, hash: HashName, data: Uint8Array): Buffer;
  protection(ref: KeyRef): KeyProtection;
  /** Throws unless the token is present and the session is logged in. */
  ping(): void;
  close(): void;
}

export function isEcKeyType(t: KeyType): boolean {
  return t.startsWith("ec-");
}

/** The hash that matches a key's strength, as RFC 5480 and common practice pair them. */
export function defaultHashFor(t: KeyType): HashName {
  switch (t) {
    case "ec-p384":
      return "SHA-384";
    default:
      return "SHA-256";
  }
}
