import { InvalidArgumentError, Option } from "commander";
import { EstcaError } from "../errors.ts";

/** `--data DIR`, shared by every command, from ESTCA_DATA when not given. */
export function dataOption(): Option {
  return new Option("--data <dir>", "data directory").env("ESTCA_DATA").default("./data");
}

/** Runs a command body; expected failures print one line and exit non-zero, with no stack. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void) {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      process.exitCode = 1;
      if (e instanceof EstcaError) {
        process.stderr.write(`estca: ${e.message}\n`);
      } else {
        process.stderr.write(`estca: unexpected error: ${e instanceof Error ? e.message : String(e)}\n`);
        if (process.env.ESTCA_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
        else process.stderr.write("estca: this is a bug; set ESTCA_DEBUG=1 to see where it happened\n");
      }
    }
  };
}


/** An option that also reads ESTCA_<NAME>. */
export function envOption(flags: string, description: string, env: string): Option {
  return new Option(flags, description).env(`ESTCA_${env}`);
}

export function parsePort(v: string): number {
  const n = Number(v);
  // commander prints an InvalidArgumentError as one usage line; anything else would be a stack.
  if (!/^\d+$/.test(v) || n > 65535) throw new InvalidArgumentError(`${v} is not a port number (0-65535)`);
  return n;
}

export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, ...v.split(",").map((s) => s.trim()).filter(Boolean)];
}

/** Prints rows as aligned columns. */
export function table(rows: string[][]): string {
  if (!rows.length) return "";
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ")).join("\n") + "\n";
}

export function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
