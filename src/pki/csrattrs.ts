import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { configError } from "../errors.ts";
import { OID } from "./oids.ts";

/** One /csrattrs entry as the config file writes it: a name, a dotted OID, or an attribute with values. */
export type CsrAttrEntry = string | { attribute: string; values: string[] };

const DOTTED = /^\d+(\.\d+)+$/;

/** Bare OIDs a profile can name: "what the CSR should use" (RFC 7030 4.5.2). */
const NAMED_OIDS: Record<string, string> = {
  challengePassword: OID.challengePassword,
  macAddress: "1.3.6.1.1.1.1.22",
  "ecdsa-with-SHA256": OID.ecdsaWithSHA256,
  "ecdsa-with-SHA384": OID.ecdsaWithSHA384,
  "ecdsa-with-SHA512": OID.ecdsaWithSHA512,
  sha256WithRSAEncryption: OID.sha256WithRSA,
  sha384WithRSAEncryption: OID.sha384WithRSA,
  sha512WithRSAEncryption: OID.sha512WithRSA,
  sha256: OID.sha256,
  sha384: OID.sha384,
  sha512: OID.sha512,
  ed25519: OID.ed25519,
};

/** Extensions a profile may ask for through extensionRequest (draft-ietf-lamps-rfc7030-csrattrs). */
const NAMED_EXTENSIONS: Record<string, string> = {
  subjectAltName: OID.subjectAltName,
  keyUsage: "2.5.29.15",
  extendedKeyUsage: "2.5.29.37",
};

function oidOf(name: string, table: Record<string, string>, where: string): string {
  if (Object.hasOwn(table, name)) return table[name];
  if (DOTTED.test(name)) return name;
  throw configError(`${where}: "${name}" is neither a dotted OID nor one of ${Object.keys(table).join(", ")}`);
}

function attribute(type: string, values: asn1js.AsnType[]): asn1js.Sequence {
  return new pkijs.Attribute({ type, values }).toSchema() as asn1js.Sequence;
}

/**
 * An extensionRequest template: each named extension with an empty value, telling the client
 * "put this extension in your CSR" (draft-ietf-lamps-rfc7030-csrattrs, section 3.4).
 */
function extensionTemplate(names: string[], where: string): asn1js.Sequence {
  const exts = names.map((n) => {
    const extnID = oidOf(n, NAMED_EXTENSIONS, where);
    // A SAN template is an empty GeneralNames; other extensions get an empty value.
    const value = extnID === OID.subjectAltName ? new asn1js.Sequence({ value: [] }).toBER() : new ArrayBuffer(0);
    return new pkijs.Extension({ extnID, critical: false, extnValue: value });
  });
  return new pkijs.Extensions({ extensions: exts }).toSchema() as asn1js.Sequence;
}

function entryToAsn(e: CsrAttrEntry, where: string): asn1js.AsnType {
  if (typeof e === "string") {
    // Key types: an attribute naming the algorithm with its parameter (RFC 7030 4.5.2 example;
    // the RSA key size as an INTEGER per draft-ietf-lamps-rfc7030-csrattrs).
    if (e === "ec-p256") return attribute(OID.ecPublicKey, [new asn1js.ObjectIdentifier({ value: OID.secp256r1 })]);
    if (e === "ec-p384") return attribute(OID.ecPublicKey, [new asn1js.ObjectIdentifier({ value: OID.secp384r1 })]);
    const rsa = e.match(/^rsa-(2048|3072|4096)$/);
    if (rsa) return attribute(OID.rsaEncryption, [new asn1js.Integer({ value: Number(rsa[1]) })]);
    if (e === "extensionRequest") return attribute(OID.extensionRequest, [extensionTemplate(["subjectAltName"], where)]);
    return new asn1js.ObjectIdentifier({ value: oidOf(e, NAMED_OIDS, where) });
  }
  if (e.attribute === "extensionRequest" || e.attribute === OID.extensionRequest) {
    return attribute(OID.extensionRequest, [extensionTemplate(e.values.length ? e.values : ["subjectAltName"], where)]);
  }
  const type = oidOf(e.attribute, NAMED_OIDS, where);
  return attribute(
    type,
    e.values.map((v) => new asn1js.ObjectIdentifier({ value: oidOf(v, { ...NAMED_OIDS, "ec-p256": OID.secp256r1, "ec-p384": OID.secp384r1, secp256r1: OID.secp256r1, secp384r1: OID.secp384r1 }, where) })),
  );
}

/**
 * The DER CsrAttrs of RFC 7030 4.5.2: SEQUENCE SIZE (0..MAX) OF AttrOrOID. When the profile
 * requires channel binding, challengePassword is listed even if the config forgot it, because
 * clients only fill it in when asked.
 */
export function buildCsrAttrs(entries: CsrAttrEntry[], opts: { requireChallengePassword: boolean; where: string }): Buffer {
  const list = [...entries];
  const hasCp = list.some((e) => (typeof e === "string" ? e === "challengePassword" || e === OID.challengePassword : e.attribute === "challengePassword" || e.attribute === OID.challengePassword));
  if (opts.requireChallengePassword && !hasCp) list.unshift("challengePassword");
  const seq = new asn1js.Sequence({ value: list.map((e, i) => entryToAsn(e, `${opts.where}[${i}]`)) });
  return Buffer.from(seq.toBER());
}
