import { mountAdmin } from "../admin/mount.ts";
import type { Mount } from "./apps.ts";
import { mountHealth } from "./health.ts";
import { mountMetrics } from "./metrics.ts";
import { mountPki } from "./pki-http.ts";

// The edges each listener serves besides EST. A new edge adds itself here.
export const tlsMounts: Mount[] = [mountAdmin];
export const httpMounts: Mount[] = [mountHealth, mountMetrics, mountPki];
