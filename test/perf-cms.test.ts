// Issue 6: certsOnly() embeds certificates without pkijs re-encoding them. What a client gets must
// still be every certificate byte for byte, in order, in the form openssl reads.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { certsOnly } from "../src/pki/cms.ts";
import { fromPemAll } from "../src/pki/encoding.ts";
import { cleanup, run, runBinary, tempDir } from "./helpers/harness.ts";
import { join } from "node:path";
import { writeFileSync } from "node:fs";

describe("certs-only CMS", () => {
  test("holds each certificate byte for byte (EC and RSA, one and several)", async () => {
    const dir = tempDir();
    try {
      const ders: Buffer[] = [];
      for (const [name, alg] of [["ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]], ["rsa", ["-newkey", "rsa:2048"]]] as const) {
        const r = await run("openssl", ["req", "-x509", ...alg, "-nodes", "-keyout", join(dir, `${name}.key`), "-subj", `/CN=cms ${name}/O=estca`, "-days", "2", "-outform", "DER", "-out", join(dir, `${name}.der`)]);
        assert.equal(r.code, 0, r.stderr);
        ders.push((await runBinary("cat", [join(dir, `${name}.der`)])).stdout);
      }
      for (const set of [[ders[0]], [ders[1]], ders, [ders[1], ders[0]]]) {
        const cms = certsOnly(set);
        writeFileSync(join(dir, "p7.der"), cms);
        const out = await run("openssl", ["pkcs7", "-inform", "DER", "-in", join(dir, "p7.der"), "-print_certs"]);
        assert.equal(out.code, 0, out.stderr);
        const back = fromPemAll(out.stdout, ["CERTIFICATE"]);
        assert.equal(back.length, set.length);
        back.forEach((d, i) => assert.ok(Buffer.from(d).equals(set[i]), `certificate ${i} changed on the way`));
      }
    } finally {
      cleanup(dir);
    }
  });
});
