import type Koa from "koa";
import type { Services } from "../server/services.ts";
import { adminApi } from "./api.ts";
import { staticUi } from "./static.ts";

/** The web UI and its JSON API, on the TLS listener only: sessions and passwords never cross plain HTTP. */
export function mountAdmin(app: Koa, s: Services): void {
  app.use(staticUi());
  app.use(adminApi(s));
}
