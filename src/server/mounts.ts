import type { Mount } from "./apps.ts";
import { mountHealth } from "./health.ts";
import { mountMetrics } from "./metrics.ts";
import { mountPki } from "./pki-http.ts";

// The edges each listener serves besides EST. A new edge adds itself here.
export const tlsMounts: Mount[] = [];
export const httpMounts: Mount[] = [mountHealth, mountMetrics, mountPki];
