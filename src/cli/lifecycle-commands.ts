import type { Command } from "commander";

// Commands of the CA lifecycle (revoke, rollover, crl) register here.
export function registerExtraCommands(_program: Command): void {}
