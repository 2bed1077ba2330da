// Helpers for the CA lifecycle tests (test/lifecycle-*.test.ts). Real processes only.
import assert from "node:assert/strict";
import { join } from "node:path";
import { run } from "./harness.ts";

export const SRC = join(import.meta.dirname, "..", "..", "src");

/**
 * Runs `body` in a separate process against the data directory, with `i` an opened instance
 * (real token, real store); prints and returns what the body returns.
 */
export async function inInstance(dir: string, body: string): Promise<any> {
  const code = `
    import { openInstance } from ${JSON.stringify(join(SRC, "instance", "open.ts"))};
    const i = openInstance(process.argv[1]);
    try { const out = await (async () => { ${body} })(); console.log(JSON.stringify(out)); } finally { i.close(); }`;
  const r = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code, dir]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}
