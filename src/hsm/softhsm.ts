import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { configError } from "../errors.ts";

export const SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so";

/**
 * SoftHSM reads SOFTHSM2_CONF when the module is initialised, so this must run before the
 * module is loaded. Keeping the config and the token directory inside the data directory makes
 * every instance (and every test) own its token.
 */
export function useProjectLocalSoftHsm(dataDir: string): string {
  const conf = join(dataDir, "softhsm2.conf");
  process.env.SOFTHSM2_CONF = conf;
  return conf;
}

/** Creates the config and an initialized token labelled `label` with the given PINs. */
export function initSoftHsmToken(dataDir: string, label: string, soPin: string, pin: string): void {
  const tokenDir = join(dataDir, "tokens");
  mkdirSync(tokenDir, { recursive: true, mode: 0o700 });
  const conf = useProjectLocalSoftHsm(dataDir);
  writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, { mode: 0o600 });
  if (!existsSync(SOFTHSM_MODULE)) {
    throw configError(`SoftHSM2 is not installed (${SOFTHSM_MODULE} is missing): install it with \`apt-get install -y softhsm2\``);
  }
  try {
    execFileSync("softhsm2-util", ["--init-token", "--free", "--label", label, "--so-pin", soPin, "--pin", pin], {
      env: { ...process.env, SOFTHSM2_CONF: conf },
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (e) {
    const err = e as { code?: string; stderr?: Buffer };
    if (err.code === "ENOENT") throw configError("softhsm2-util is not installed: install it with `apt-get install -y softhsm2`");
    throw configError(`softhsm2-util could not create the token: ${err.stderr?.toString().trim() ?? String(e)}`);
  }
}
