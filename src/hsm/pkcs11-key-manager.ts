import { createHash, createPublicKey } from "node:crypto";
import { existsSync } from "node:fs";
import pkcs11js from "pkcs11js";
import * as asn1js from "asn1js";
import { EstcaError, configError, unavailable } from "../errors.ts";
import { type HashName, type KeyManager, type KeyProtection, type KeyRef, type KeyType, type TokenInfo, isEcKeyType } from "./key-manager.ts";

export interface Pkcs11Options {
  module: string;
  tokenLabel: string;
  pin: string;
}

const CURVES: Record<string, { oid: string; jwk: string; size: number }> = {
  "ec-p256": { oid: "1.2.840.10045.3.1.7", jwk: "P-256", size: 32 },
  "ec-p384": { oid: "1.3.132.0.34", jwk: "P-384", size: 48 },
};

const RSA_SIGN_MECH: Record<HashName, number> = {
  "SHA-256": pkcs11js.CKM_SHA256_RSA_PKCS,
  "SHA-384": pkcs11js.CKM_SHA384_RSA_PKCS,
  "SHA-512": pkcs11js.CKM_SHA512_RSA_PKCS,
};

// Session states from the PKCS#11 spec; pkcs11js does not export them.
const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;

const NODE_HASH: Record<HashName, string> = { "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512" };

// Return codes that mean the token, its session or its login went away while we ran. They are
// answered with 503 and a fresh session on the next call rather than a crash.
const TRANSIENT = new Set<number>([
  pkcs11js.CKR_SESSION_HANDLE_INVALID,
  pkcs11js.CKR_SESSION_CLOSED,
  pkcs11js.CKR_TOKEN_NOT_PRESENT,
  pkcs11js.CKR_DEVICE_REMOVED,
  pkcs11js.CKR_DEVICE_ERROR,
  pkcs11js.CKR_USER_NOT_LOGGED_IN,
  pkcs11js.CKR_OBJECT_HANDLE_INVALID,
  pkcs11js.CKR_KEY_HANDLE_INVALID,
  pkcs11js.CKR_GENERAL_ERROR,
  pkcs11js.CKR_CRYPTOKI_NOT_INITIALIZED,
]);

function trimPadded(s: string): string {
  return s.replace(/[\s\0]+$/, "");
}

function ckrName(e: unknown): string {
  return e instanceof Error ? e.message.split(":")[0] : String(e);
}

export class Pkcs11KeyManager implements KeyManager {
  readonly info: TokenInfo;
  private readonly p11: pkcs11js.PKCS11;
  private slot: pkcs11js.Handle;
  private session: pkcs11js.Handle | null = null;
  private readonly privHandles = new Map<string, pkcs11js.Handle>();
  private readonly opts: Pkcs11Options;

  private constructor(opts: Pkcs11Options, p11: pkcs11js.PKCS11, slot: pkcs11js.Handle, info: TokenInfo) {
    this.opts = opts;
    this.p11 = p11;
    this.slot = slot;
    this.info = info;
  }

  /** Loads the module, finds the token by its label (slot ids change at init) and logs in. */
  static open(opts: Pkcs11Options): Pkcs11KeyManager {
    if (!existsSync(opts.module)) {
      const hint = opts.module.includes("softhsm")
        ? "install it with `apt-get install -y softhsm2`"
        : "check hsm.module in config.yaml";
      throw configError(`PKCS#11 module ${opts.module} not found: ${hint}`);
    }
    const p11 = new pkcs11js.PKCS11();
    try {
      p11.load(opts.module);
      p11.C_Initialize();
    } catch (e) {
      throw configError(`cannot load PKCS#11 module ${opts.module}: ${ckrName(e)}`);
    }
    try {
      const { slot, info } = Pkcs11KeyManager.findToken(p11, opts);
      const km = new Pkcs11KeyManager(opts, p11, slot, info);
      km.login();
      return km;
    } catch (e) {
      try {
        p11.C_Finalize();
      } catch {
        /* already failing */
      }
      throw e;
    }
  }

  private static findToken(p11: pkcs11js.PKCS11, opts: Pkcs11Options): { slot: pkcs11js.Handle; info: TokenInfo } {
    for (const slot of p11.C_GetSlotList(true)) {
      const t = p11.C_GetTokenInfo(slot);
      if (trimPadded(t.label) === opts.tokenLabel) {
        return {
          slot,
          info: {
            module: opts.module,
            tokenLabel: opts.tokenLabel,
            manufacturer: trimPadded(t.manufacturerID),
            model: trimPadded(t.model),
            serial: trimPadded(t.serialNumber),
          },
        };
      }
    }
    throw unavailable(`no PKCS#11 token labelled "${opts.tokenLabel}" in ${opts.module}: is the token initialized and its SOFTHSM2_CONF right?`);
  }

  private login(): pkcs11js.Handle {
    const s = this.p11.C_OpenSession(this.slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
    try {
      this.p11.C_Login(s, pkcs11js.CKU_USER, this.opts.pin);
    } catch (e) {
      const code = (e as { code?: number }).code;
      if (code !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) {
        this.p11.C_CloseSession(s);
        if (code === pkcs11js.CKR_PIN_INCORRECT || code === pkcs11js.CKR_PIN_LEN_RANGE || code === pkcs11js.CKR_PIN_INVALID) {
          throw unavailable(`the PKCS#11 token "${this.opts.tokenLabel}" refused the PIN (${ckrName(e)}): check ESTCA_HSM_PIN or the hsm-pin file`);
        }
        if (code === pkcs11js.CKR_PIN_LOCKED) {
          throw unavailable(`the PIN of token "${this.opts.tokenLabel}" is locked: unlock it with the SO PIN`);
        }
        throw unavailable(`login to token "${this.opts.tokenLabel}" failed: ${ckrName(e)}`);
      }
    }
    this.session = s;
    this.privHandles.clear();
    return s;
  }

  /**
   * Runs one token operation. A session that died under us (token removed, module reset) is
   * replaced once; if that fails too the caller gets `unavailable`, which the edge turns into 503.
   */
  private withSession<T>(what: string, fn: (s: pkcs11js.Handle) => T): T {
    for (let attempt = 0; ; attempt++) {
      let s: pkcs11js.Handle;
      try {
        s = this.session ?? this.reconnect();
      } catch (e) {
        if (e instanceof EstcaError) throw e;
        throw unavailable(`PKCS#11 token "${this.opts.tokenLabel}" is unavailable: ${ckrName(e)}`);
      }
      try {
        return fn(s);
      } catch (e) {
        const code = (e as { code?: number }).code;
        if (code !== undefined && TRANSIENT.has(code)) {
          this.dropSession();
          if (attempt === 0) continue;
          throw unavailable(`PKCS#11 token "${this.opts.tokenLabel}" failed during ${what}: ${ckrName(e)}`);
        }
        throw e;
      }
    }
  }

  private reconnect(): pkcs11js.Handle {
    // After a device reset the module may need re-initialising before slots show again.
    try {
      this.p11.C_Finalize();
    } catch {
      /* not initialised */
    }
    this.p11.C_Initialize();
    this.slot = Pkcs11KeyManager.findToken(this.p11, this.opts).slot;
    return this.login();
  }

  private dropSession(): void {
    if (this.session !== null) {
      try {
        this.p11.C_CloseSession(this.session);
      } catch {
        /* already gone */
      }
    }
    this.session = null;
    this.privHandles.clear();
  }

  private findObject(s: pkcs11js.Handle, label: string, cls: number): pkcs11js.Handle | null {
    this.p11.C_FindObjectsInit(s, [
      { type: pkcs11js.CKA_CLASS, value: cls },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]);
    try {
      return this.p11.C_FindObjects(s);
    } finally {
      this.p11.C_FindObjectsFinal(s);
    }
  }

  generateKeyPair(label: string, keyType: KeyType): KeyRef {
    return this.withSession("key generation", (s) => {
      if (this.findObject(s, label, pkcs11js.CKO_PRIVATE_KEY)) {
        throw new EstcaError("conflict", `a key labelled "${label}" already exists in the token`);
      }
      const id = createHash("sha1").update(label).digest();
      const common = [
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_LABEL, value: label },
        { type: pkcs11js.CKA_ID, value: id },
      ];
      const priv = [
        ...common,
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
        { type: pkcs11js.CKA_SIGN, value: true },
        { type: pkcs11js.CKA_DECRYPT, value: false },
      ];
      const pub = [...common, { type: pkcs11js.CKA_VERIFY, value: true }, { type: pkcs11js.CKA_PRIVATE, value: false }];
      if (isEcKeyType(keyType)) {
        const params = Buffer.from(new asn1js.ObjectIdentifier({ value: CURVES[keyType].oid }).toBER());
        pub.push({ type: pkcs11js.CKA_EC_PARAMS, value: params } as never);
        this.p11.C_GenerateKeyPair(s, { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN }, pub, priv);
      } else {
        const bits = Number(keyType.split("-")[1]);
        pub.push({ type: pkcs11js.CKA_MODULUS_BITS, value: bits } as never);
        pub.push({ type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) } as never);
        this.p11.C_GenerateKeyPair(s, { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN }, pub, priv);
      }
      return { label, keyType };
    });
  }

  findKey(label: string): KeyRef | null {
    return this.withSession("key lookup", (s) => {
      const h = this.findObject(s, label, pkcs11js.CKO_PRIVATE_KEY);
      if (!h) return null;
      const [kt] = this.p11.C_GetAttributeValue(s, h, [{ type: pkcs11js.CKA_KEY_TYPE }]);
      const type = (kt.value as Buffer).readUInt32LE(0);
      if (type === pkcs11js.CKK_EC) {
        const pubH = this.findObject(s, label, pkcs11js.CKO_PUBLIC_KEY);
        if (!pubH) throw unavailable(`public half of key "${label}" is missing from the token`);
        const [p] = this.p11.C_GetAttributeValue(s, pubH, [{ type: pkcs11js.CKA_EC_PARAMS }]);
        const oid = (asn1js.fromBER(new Uint8Array(p.value as Buffer)).result as asn1js.ObjectIdentifier).valueBlock.toString();
        const kt2 = Object.entries(CURVES).find(([, c]) => c.oid === oid)?.[0] as KeyType | undefined;
        if (!kt2) throw unavailable(`key "${label}" uses an unsupported curve ${oid}`);
        return { label, keyType: kt2 };
      }
      const [m] = this.p11.C_GetAttributeValue(s, h, [{ type: pkcs11js.CKA_MODULUS }]);
      return { label, keyType: `rsa-${(m.value as Buffer).length * 8}` as KeyType };
    });
  }

  deleteKey(label: string): void {
    this.withSession("key deletion", (s) => {
      for (const cls of [pkcs11js.CKO_PRIVATE_KEY, pkcs11js.CKO_PUBLIC_KEY]) {
        const h = this.findObject(s, label, cls);
        if (h) this.p11.C_DestroyObject(s, h);
      }
      this.privHandles.delete(label);
    });
  }

  publicKeySpki(ref: KeyRef): Buffer {
    return this.withSession("public key export", (s) => {
      const h = this.findObject(s, ref.label, pkcs11js.CKO_PUBLIC_KEY);
      if (!h) throw unavailable(`public key "${ref.label}" is missing from the token`);
      if (isEcKeyType(ref.keyType)) {
        const [pt] = this.p11.C_GetAttributeValue(s, h, [{ type: pkcs11js.CKA_EC_POINT }]);
        // CKA_EC_POINT is the uncompressed point wrapped in a DER OCTET STRING.
        const octets = asn1js.fromBER(new Uint8Array(pt.value as Buffer)).result as asn1js.OctetString;
        const point = Buffer.from(octets.valueBlock.valueHexView);
        const size = CURVES[ref.keyType].size;
        const jwk = {
          kty: "EC",
          crv: CURVES[ref.keyType].jwk,
          x: point.subarray(1, 1 + size).toString("base64url"),
          y: point.subarray(1 + size).toString("base64url"),
        };
        return createPublicKey({ key: jwk, format: "jwk" }).export({ type: "spki", format: "der" });
      }
      const [n, e] = this.p11.C_GetAttributeValue(s, h, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]);
      const jwk = { kty: "RSA", n: (n.value as Buffer).toString("base64url"), e: (e.value as Buffer).toString("base64url") };
      return createPublicKey({ key: jwk, format: "jwk" }).export({ type: "spki", format: "der" });
    });
  }

  private privateHandle(s: pkcs11js.Handle, label: string): pkcs11js.Handle {
    let h = this.privHandles.get(label);
    if (!h) {
      h = this.findObject(s, label, pkcs11js.CKO_PRIVATE_KEY) ?? undefined;
      if (!h) throw unavailable(`private key "${label}" is missing from the token`);
      this.privHandles.set(label, h);
    }
    return h;
  }

  sign(ref: KeyRef, hash: HashName, data: Uint8Array): Buffer {
    return this.withSession("signing", (s) => {
      const key = this.privateHandle(s, ref.label);
      if (isEcKeyType(ref.keyType)) {
        // Hashing here and signing the digest with CKM_ECDSA works with every token, where the
        // combined CKM_ECDSA_SHAxxx mechanisms are optional in PKCS#11.
        const digest = createHash(NODE_HASH[hash]).update(data).digest();
        this.p11.C_SignInit(s, { mechanism: pkcs11js.CKM_ECDSA }, key);
        return this.p11.C_Sign(s, digest, Buffer.alloc(CURVES[ref.keyType].size * 2));
      }
      this.p11.C_SignInit(s, { mechanism: RSA_SIGN_MECH[hash] }, key);
      return this.p11.C_Sign(s, Buffer.from(data.buffer, data.byteOffset, data.byteLength), Buffer.alloc(512));
    });
  }

  protection(ref: KeyRef): KeyProtection {
    return this.withSession("attribute read", (s) => {
      const h = this.privateHandle(s, ref.label);
      const attrs = this.p11.C_GetAttributeValue(s, h, [
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
        { type: pkcs11js.CKA_ALWAYS_SENSITIVE },
        { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
      ]);
      const b = (i: number) => (attrs[i].value as Buffer)[0] === 1;
      return { sensitive: b(0), extractable: b(1), alwaysSensitive: b(2), neverExtractable: b(3) };
    });
  }

  ping(): void {
    this.withSession("health check", (s) => {
      const info = this.p11.C_GetSessionInfo(s);
      if (info.state !== CKS_RW_USER_FUNCTIONS && info.state !== CKS_RO_USER_FUNCTIONS) {
        throw unavailable(`token "${this.opts.tokenLabel}" session is not logged in`);
      }
      // A session can outlive the token's files; reading a key proves the token still answers.
      this.findObject(s, "\u0000probe", pkcs11js.CKO_PRIVATE_KEY);
    });
  }

  close(): void {
    this.dropSession();
    try {
      this.p11.C_Finalize();
    } catch {
      /* already finalized */
    }
    try {
      this.p11.close();
    } catch {
      /* unloaded */
    }
  }
}
