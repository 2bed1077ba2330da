#!/usr/bin/env node
// The package is run from source through tsx, so the bin only has to register the loader.
import { register } from "tsx/esm/api";
register();
await import("../src/cli/main.ts");
