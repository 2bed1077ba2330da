import * as asn1js from "asn1js";

/**
 * asn1js 4's RawData returns its bytes but does not hand them to the writer a constructed parent
 * passes in, so inside a SEQUENCE it silently encodes as nothing. This one does both.
 */
class EmbeddedDer extends asn1js.RawData {
  override toBER(sizeOnly?: boolean, writer?: { write(b: ArrayBuffer): void }): ArrayBuffer {
    const b = super.toBER(sizeOnly);
    writer?.write(b);
    return b;
  }
}

/**
 * DER that is already encoded, placed verbatim inside a structure asn1js encodes (its typings
 * only admit parsed blocks as children). Embedding instead of re-parsing is what keeps
 * certificates, CMS and signatures cheap to build: asn1js spends about a microsecond per byte
 * when it parses.
 */
export function rawDer(der: Uint8Array | ArrayBuffer): asn1js.BaseBlock {
  return new EmbeddedDer({ data: der instanceof Uint8Array ? der : new Uint8Array(der) }) as unknown as asn1js.BaseBlock;
}

/** Encodes a block as a Buffer. */
export function encodeDer(block: { toBER(): ArrayBuffer }): Buffer {
  return Buffer.from(block.toBER());
}
