// Media types exactly as the strictest EST clients match them (../shared/est-interop.md).
export const CT_CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only";
export const CT_CMC_RESPONSE = "application/pkcs7-mime; smime-type=CMC-response";
export const CT_SERVER_KEY = "application/pkcs7-mime; smime-type=server-generated-key";
export const CT_CSRATTRS = "application/csrattrs";
export const CT_PKCS8 = "application/pkcs8";

/** Request media types each POST operation accepts (RFC 7030 and RFC 8951). */
export const ACCEPTED_REQUEST_TYPES: Record<string, string[]> = {
  simpleenroll: ["application/pkcs10"],
  simplereenroll: ["application/pkcs10"],
  serverkeygen: ["application/pkcs10"],
  fullcmc: ["application/pkcs7-mime", "application/pkcs7"],
};

/** The bare media type of a Content-Type header, lower-cased, without parameters. */
export function bareType(header: string | undefined): string {
  return (header ?? "").split(";")[0].trim().toLowerCase();
}
