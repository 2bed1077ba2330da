import Koa from "koa";
import type { Context, Next } from "koa";
import { sendFailure } from "../http/errors.ts";
import { estMiddleware } from "../est/router.ts";
import type { Services } from "./services.ts";

/**
 * Extra middleware mounted by other edges (admin UI and API on the TLS port; CRL, OCSP, metrics
 * and health on the plain port). Each edge module exports a function that adds its routes.
 */
export type Mount = (app: Koa, s: Services) => void;

function notFoundLast(ctx: Context): void {
  if (ctx.status === 404 && !ctx.body) sendFailure(ctx, { status: 404, reason: `nothing at ${ctx.path}`, headers: {} });
}

/** The TLS listener: EST, then whatever else is mounted (the admin UI). */
export function buildTlsApp(s: Services, mounts: Mount[] = []): Koa {
  const app = new Koa();
  app.proxy = false;
  app.silent = true;
  app.use(async (ctx: Context, next: Next) => {
    await next();
    notFoundLast(ctx);
  });
  app.use(estMiddleware(s));
  for (const m of mounts) m(app, s);
  return app;
}

/** The plain HTTP listener: CRL, OCSP, metrics, health. */
export function buildHttpApp(s: Services, mounts: Mount[] = []): Koa {
  const app = new Koa();
  app.silent = true;
  app.use(async (ctx: Context, next: Next) => {
    await next();
    notFoundLast(ctx);
  });
  for (const m of mounts) m(app, s);
  return app;
}
