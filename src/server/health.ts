import Router from "@koa/router";
import type Koa from "koa";
import { messageOf } from "../errors.ts";
import type { Services } from "./services.ts";

/** /healthz: the process answers. /readyz: the token is logged in and the database is writable. */
export function mountHealth(app: Koa, s: Services): void {
  const r = new Router();
  r.get("/healthz", (ctx) => {
    ctx.set("Content-Type", "text/plain; charset=utf-8");
    ctx.body = "ok\n";
  });
  r.get("/readyz", (ctx) => {
    const problems: string[] = [];
    try {
      s.km.ping();
    } catch (e) {
      problems.push(`token: ${messageOf(e)}`);
    }
    try {
      s.store.checkWritable();
    } catch (e) {
      problems.push(`database: ${messageOf(e)}`);
    }
    ctx.status = problems.length ? 503 : 200;
    ctx.set("Content-Type", "text/plain; charset=utf-8");
    ctx.body = problems.length ? problems.join("\n") + "\n" : "ready\n";
  });
  app.use(r.routes());
}
