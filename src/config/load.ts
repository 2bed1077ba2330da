import { readFileSync, writeFileSync } from "node:fs";
import YAML from "yaml";
import { configError, messageOf } from "../errors.ts";
import { type Config, configSchema } from "./schema.ts";

/** Reads and validates config.yaml; a bad file names the key that is wrong. */
export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw configError(`cannot read ${path}: ${messageOf(e)}`);
  }
  if (!text.trim()) throw configError(`${path} is empty: restore it from a backup (estca will not invent a configuration for an existing CA)`);
  let raw: unknown;
  try {
    raw = YAML.parse(text, { prettyErrors: true });
  } catch (e) {
    throw configError(`${path} is not valid YAML: ${messageOf(e).split("\n")[0]}`);
  }
  return parseConfig(raw, path);
}

export function parseConfig(raw: unknown, source = "config"): Config {
  const r = configSchema.safeParse(raw ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    const key = issue.path.length ? issue.path.join(".") : "(top level)";
    const extra = issue.code === "unrecognized_keys" ? `: unknown key ${(issue as { keys: string[] }).keys.join(", ")}` : "";
    throw configError(`${source}: ${key}: ${issue.message}${extra}`);
  }
  return r.data;
}

export function writeConfig(path: string, config: Config, header: string): void {
  writeFileSync(path, `${header}\n${YAML.stringify(config, { lineWidth: 0 })}`, { mode: 0o600 });
}
