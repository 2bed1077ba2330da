import { readFileSync, readdirSync } from "node:fs";
import { extname, join, resolve } from "node:path";
import type { Context, Next } from "koa";

export const WEB_DIR = resolve(import.meta.dirname, "..", "..", "web");

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

// Scripts and styles only from this origin, no framing, nothing sent to other sites.
export const UI_HEADERS: Record<string, string> = {
  "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
};

/**
 * Serves the UI's static files under /ui/. The set is read once at start, from a fixed
 * directory listing, so no request path ever reaches the file system.
 */
export function staticUi(dir = WEB_DIR): (ctx: Context, next: Next) => Promise<void> {
  const files = new Map<string, { type: string; body: Buffer }>();
  for (const f of readdirSync(dir)) {
    const type = TYPES[extname(f)];
    if (type) files.set(f, { type, body: readFileSync(join(dir, f)) });
  }
  return async (ctx, next) => {
    if (ctx.path === "/" || ctx.path === "/ui") return ctx.redirect("/ui/");
    if (!ctx.path.startsWith("/ui/")) return next();
    if (ctx.method !== "GET" && ctx.method !== "HEAD") return next();
    const name = ctx.path === "/ui/" ? "index.html" : ctx.path.slice(4);
    const f = files.get(name);
    if (!f) return next();
    for (const [k, v] of Object.entries(UI_HEADERS)) ctx.set(k, v);
    ctx.set("Cache-Control", "no-cache");
    ctx.type = f.type;
    ctx.body = f.body;
  };
}
