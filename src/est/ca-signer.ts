import { hsmPkijsEngine } from "../ca/hsm-crypto.ts";
import type { CmsSigner } from "../pki/cms-signed.ts";
import type { Services } from "../server/services.ts";

let engine: { crypto: Crypto; engine: ReturnType<typeof hsmPkijsEngine> } | null = null;

/** The CA's current key as a CMS signer; the signature is made inside the token. */
export function caSigner(s: Services): CmsSigner {
  if (engine?.crypto !== s.ca.crypto) engine = { crypto: s.ca.crypto, engine: hsmPkijsEngine(s.ca.crypto) };
  const iss = s.ca.issuer;
  return { certDer: iss.der, key: iss.key as unknown as CryptoKey, hash: iss.key.hash, engine: engine.engine };
}
