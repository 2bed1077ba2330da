// estca admin UI: plain DOM, no framework. Every value from the server is put into the page as
// text (never as HTML), so a certificate subject cannot inject markup.
"use strict";

const state = { user: null, csrf: null, timer: null, badgeTimer: null };

// ---------- small helpers ----------

/** h("div.card#x", {attrs}, children...) builds an element; strings become text nodes. */
function h(spec, attrs, ...children) {
  const m = /^([a-z0-9]+)((?:[.#][\w-]+)*)$/i.exec(spec);
  const el = document.createElement(m ? m[1] : "div");
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === ".") el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}
function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $ = (sel) => document.querySelector(sel);
const svgNS = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function fmtDate(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toISOString().slice(0, 10);
}
function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return `${d.toISOString().slice(0, 10)} ${d.toTimeString().slice(0, 8)}`;
}
function shortSerial(serial) {
  return serial.length > 16 ? `${serial.slice(0, 8)}…${serial.slice(-6)}` : serial;
}
/** A table cell labelled for the phone layout, where each row becomes a card. */
function td(label, ...children) {
  return h("td", { "data-label": label }, h("div.cell", children));
}
function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function toast(message, kind = "ok") {
  const t = h(`div.toast.toast-${kind}`, { role: kind === "error" ? "alert" : "status" }, message);
  $("#toasts").append(t);
  setTimeout(() => t.classList.add("toast-out"), 4200);
  setTimeout(() => t.remove(), 4800);
}

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    toast(`${what} copied`);
  } catch {
    toast("copying needs a secure context; select the text instead", "error");
  }
}
function copyButton(text, what) {
  return h("button.btn.btn-ghost.btn-small.copy", { type: "button", title: `Copy ${what}`, onclick: () => copy(text, what) }, "Copy");
}

function statusBadge(status) {
  return h(`span.badge.badge-${status}`, status);
}
function httpBadge(code) {
  const kind = code >= 500 ? "err" : code >= 400 ? "warn" : code === 202 ? "wait" : "ok";
  return h(`span.badge.badge-http-${kind}`, String(code));
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
  }
  const res = await fetch(`/api${path}`, { method, headers, body: body === undefined ? (method === "GET" ? undefined : "{}") : JSON.stringify(body), credentials: "same-origin" });
  let data = null;
  try {
    data = await res.json();
  } catch {
    /* empty body */
  }
  if (!res.ok) {
    if (res.status === 401 && path !== "/login") {
      showLogin();
      throw new ApiError(401, "your session ended; sign in again");
    }
    throw new ApiError(res.status, (data && data.error) || `${res.status} ${res.statusText}`);
  }
  return data;
}

// ---------- sign-in ----------

function showLogin(message) {
  clearInterval(state.timer);
  clearInterval(state.badgeTimer);
  state.user = null;
  state.csrf = null;
  $("#topbar").hidden = true;
  $("#view").replaceChildren();
  $("#login").hidden = false;
  const err = $("#login-error");
  err.hidden = !message;
  err.textContent = message || "";
  $("#login-password").focus();
}

function signedIn(session) {
  state.user = session.user;
  state.csrf = session.csrfToken;
  $("#login").hidden = true;
  $("#topbar").hidden = false;
  $("#who-name").textContent = session.user;
  // New held requests show in the nav badge wherever the administrator is.
  clearInterval(state.badgeTimer);
  state.badgeTimer = setInterval(() => state.user && !document.hidden && refreshPendingCount(), 15000);
  route();
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const btn = $("#login-submit");
  btn.disabled = true;
  try {
    const session = await api("POST", "/login", { username: $("#login-user").value, password: $("#login-password").value });
    $("#login-password").value = "";
    signedIn(session);
  } catch (e) {
    const err = $("#login-error");
    err.hidden = false;
    err.textContent = e.status === 401 ? "Wrong user name or password." : `${e.message[0].toUpperCase()}${e.message.slice(1)}.`;
  } finally {
    btn.disabled = false;
  }
});

$("#logout").addEventListener("click", async () => {
  try {
    await api("POST", "/logout");
  } catch {
    /* already gone */
  }
  location.hash = "#/dashboard";
  showLogin();
});

// ---------- routing ----------

const pages = { dashboard: dashboardPage, certificates: certificatesPage, certificate: certificatePage, approvals: approvalsPage, requests: requestsPage, users: usersPage };

function route() {
  if (!state.user) return;
  clearInterval(state.timer);
  const parts = (location.hash.replace(/^#\/?/, "").split("?")[0] || "dashboard").split("/");
  let page = parts[0];
  if (page === "certificates" && parts[1]) page = "certificate";
  if (!pages[page]) page = "dashboard";
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.page === (page === "certificate" ? "certificates" : page));
  }
  const view = $("#view");
  view.replaceChildren(h("div.loading", "Loading…"));
  document.title = `estca · ${page[0].toUpperCase()}${page.slice(1)}`;
  pages[page](view, decodeURIComponent(parts[1] || "")).catch((e) => {
    if (e.status === 401) return;
    view.replaceChildren(h("div.card.error-card", h("h2", "Something went wrong"), h("p", e.message)));
  });
  refreshPendingCount();
}
window.addEventListener("hashchange", route);

async function refreshPendingCount() {
  try {
    const pending = await api("GET", "/approvals?state=pending");
    const el = $("#pending-count");
    el.hidden = pending.length === 0;
    el.textContent = String(pending.length);
  } catch {
    /* shown elsewhere */
  }
}

function pageHeader(title, subtitle, ...actions) {
  return h("div.page-head", h("div", h("h1", title), subtitle ? h("p.muted", subtitle) : null), actions.length ? h("div.page-actions", actions) : null);
}

// ---------- dashboard ----------

function barChart(series) {
  const w = 900;
  const hgt = 170;
  const pad = { l: 30, r: 8, t: 18, b: 26 };
  const max = Math.max(1, ...series.map((d) => d.count));
  const step = (w - pad.l - pad.r) / series.length;
  const y = (v) => pad.t + (hgt - pad.t - pad.b) * (1 - v / max);
  const svg = s("svg", { viewBox: `0 0 ${w} ${hgt}`, class: "chart", role: "img", "aria-label": "Certificates issued per day, last 30 days" });
  const ticks = max <= 4 ? [...Array(max + 1).keys()] : [0, Math.round(max / 2), max];
  for (const t of ticks) {
    svg.append(s("line", { x1: pad.l, x2: w - pad.r, y1: y(t), y2: y(t), class: "grid" }));
    svg.append(s("text", { x: pad.l - 6, y: y(t) + 4, class: "axis", "text-anchor": "end" }, String(t)));
  }
  series.forEach((d, i) => {
    const x = pad.l + i * step + step * 0.15;
    const bh = hgt - pad.b - y(d.count);
    const bar = s("rect", { x, y: y(d.count), width: step * 0.7, height: Math.max(bh, d.count ? 2 : 0), rx: 2, class: "bar" });
    bar.append(s("title", {}, `${d.day}: ${plural(d.count, "certificate")}`));
    svg.append(bar);
    if (d.count) svg.append(s("text", { x: x + step * 0.35, y: y(d.count) - 4, class: "bar-label", "text-anchor": "middle" }, String(d.count)));
    if (i % 5 === 0 || i === series.length - 1) {
      svg.append(s("text", { x: x + step * 0.35, y: hgt - 8, class: "axis", "text-anchor": "middle" }, d.day.slice(5)));
    }
  });
  return svg;
}

function kv(rows) {
  return h("dl.kv", rows.filter(Boolean).map(([k, v]) => [h("dt", k), h("dd", v)]));
}

async function dashboardPage(view) {
  const d = await api("GET", "/dashboard");
  const c = d.counts;
  const daysClass = d.ca.daysLeft < 30 ? "danger" : d.ca.daysLeft < 180 ? "warn" : "good";
  const lifetime = (Date.parse(d.ca.notAfter) - Date.parse(d.ca.notBefore)) / 86400000;
  const used = Math.min(100, Math.max(0, 100 * (1 - d.ca.daysLeft / lifetime)));
  const meter = h(`div.meter.meter-${daysClass}`, h("span"));
  meter.firstChild.style.width = `${used.toFixed(1)}%`;
  const tile = (label, value, cls, href) => h(`a.stat${cls ? "." + cls : ""}`, { href, dataset: { stat: label.toLowerCase().replace(/[^a-z]+/g, "-") } }, h("span.stat-value", String(value)), h("span.stat-label", label));
  const total30 = d.issuance.reduce((a, x) => a + x.count, 0);

  view.replaceChildren(
    pageHeader("Dashboard", `${d.ca.subject} · generation ${d.ca.generation}`, h("a.btn.btn-ghost", { href: "/api/ca.pem", download: "ca.pem" }, "Download ca.pem")),
    h(
      "section.stats",
      tile("Issued", c.issued, "", "#/certificates"),
      tile("Valid", c.valid, "stat-good", "#/certificates?status=valid"),
      tile("Revoked", c.revoked, "stat-bad", "#/certificates?status=revoked"),
      tile("Expiring ≤ 30 days", c.expiringSoon, c.expiringSoon ? "stat-warn" : "", "#/certificates?status=expiring"),
      tile("Pending approval", c.pending, c.pending ? "stat-wait" : "", "#/approvals"),
    ),
    h(
      "section.grid-3",
      h(
        "div.card",
        h("h2", "Certificate authority"),
        kv([
          ["Subject", d.ca.subject],
          ["Generation", String(d.ca.generation)],
          ["Valid from", fmtDate(d.ca.notBefore)],
          ["Valid until", h("span", fmtDate(d.ca.notAfter), " ", h(`span.pill.pill-${daysClass}`, `${d.ca.daysLeft} days left`))],
          ["Serial", h("code.wrap", d.ca.serial)],
          ["SHA-256", h("code.wrap.small", d.ca.sha256Fingerprint)],
        ]),
        meter,
        h("p.muted.small.meter-caption", `${used.toFixed(0)}% of its lifetime used`),
      ),
      h(
        "div.card",
        h("h2", "Signing key"),
        kv([
          ["Module", h("code.wrap", d.key.module)],
          ["Token", d.key.tokenLabel],
          ["Device", `${d.key.manufacturer} ${d.key.model}`.trim()],
          ["Key label", h("code", d.key.label)],
          ["Key type", d.key.keyType],
          ["Mechanism", h("code", d.key.mechanism)],
        ]),
        h("p.muted.small", "The private key is generated in the token, sensitive and not extractable; estca only asks the token to sign."),
      ),
      h(
        "div.card",
        h("h2", "Rollover"),
        kv([
          ["State", h(`span.pill.${d.rollover.state === "none" ? "pill-good" : "pill-warn"}`, d.rollover.state)],
          ["", h("span.muted.small", d.rollover.detail)],
        ]),
        h("h3", "CA certificates"),
        h(
          "ul.plain",
          d.caCertificates.map((x) => h("li", h("span.badge.badge-neutral", `gen ${x.generation}`), " ", x.role, " · ", x.status, " · until ", fmtDate(x.notAfter))),
        ),
      ),
    ),
    h(
      "section.card",
      h("div.card-head", h("h2", "Issuance, last 30 days"), h("span.muted", plural(total30, "certificate"))),
      barChart(d.issuance),
    ),
    h(
      "section.card",
      h("h2", "EST endpoints"),
      h(
        "div.table-wrap",
        h(
          "table.table.endpoints",
          h("thead", h("tr", h("th", "Label"), h("th", "Base URL"), h("th", "Approval"), h("th", "Auth"), h("th", ""))),
          h(
            "tbody",
            d.est.labels.map((l) =>
              h(
                "tr",
                td("Label", h("strong", l.label), l.description ? h("div.muted.small", l.description) : null),
                td("URL", h("code.wrap", l.url)),
                td("Approval", h(`span.pill.${l.approval === "manual" ? "pill-warn" : "pill-good"}`, l.approval)),
                td("Auth", l.auth.join(", ")),
                h("td.actions", copyButton(l.url, "URL")),
              ),
            ),
          ),
        ),
      ),
      h(
        "p.muted.small.revocation-urls",
        "Revocation, as written into issued certificates: CRL ",
        h("code", d.revocation.crl),
        " · OCSP ",
        h("code", d.revocation.ocsp),
      ),
    ),
    h(
      "section.card",
      h("div.card-head", h("h2", "Enroll a device with curl and openssl"), copyButton(d.commands.curl, "commands")),
      h("p.muted.small", "Replace USER:PASSWORD with an EST user's credentials (Users page)."),
      h("pre.code#cmd-curl", d.commands.curl),
    ),
    h(
      "section.card",
      h("div.card-head", h("h2", "Enroll with strongSwan pki"), copyButton(d.commands.strongswan, "commands")),
      h("pre.code#cmd-strongswan", d.commands.strongswan),
    ),
  );
}

// ---------- certificates ----------

function hashParams() {
  const q = location.hash.split("?")[1] || "";
  return new URLSearchParams(q);
}

async function certificatesPage(view) {
  const p = hashParams();
  const q = { q: p.get("q") || "", status: p.get("status") || "", sort: p.get("sort") || "created", order: p.get("order") || "desc", offset: Number(p.get("offset") || 0) };
  const limit = 25;
  const search = h("input.input#cert-search", { type: "search", placeholder: "Subject, SAN, serial or requester", value: q.q, "aria-label": "Search certificates" });
  const status = h(
    "select.input#cert-status",
    { "aria-label": "Status" },
    [["", "Any status"], ["valid", "Valid"], ["expiring", "Expiring ≤ 30 days"], ["revoked", "Revoked"], ["superseded", "Superseded"], ["expired", "Expired"]].map(([v, t]) => h("option", { value: v, selected: v === q.status }, t)),
  );
  const go = (changes) => {
    const next = { ...q, ...changes };
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(next)) if (v !== "" && !(k === "offset" && !v)) u.set(k, String(v));
    location.hash = `#/certificates?${u}`;
  };
  let debounce;
  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => go({ q: search.value, offset: 0 }), 300);
  });
  status.addEventListener("change", () => go({ status: status.value, offset: 0 }));
  const sortChoices = [["created:desc", "Newest first"], ["created:asc", "Oldest first"], ["subject:asc", "Subject A–Z"], ["subject:desc", "Subject Z–A"], ["expiry:asc", "Expiring soonest"], ["expiry:desc", "Expiring latest"], ["serial:asc", "Serial"], ["status:asc", "Status"]];
  const current = `${q.sort}:${q.order}`;
  const sortSel = h(
    "select.input#cert-sort",
    { "aria-label": "Sort by" },
    (sortChoices.some(([v]) => v === current) ? sortChoices : [[current, `${q.sort} ${q.order}`], ...sortChoices]).map(([v, t]) => h("option", { value: v, selected: v === current }, t)),
  );
  sortSel.addEventListener("change", () => {
    const [sort, order] = sortSel.value.split(":");
    go({ sort, order, offset: 0 });
  });

  const params = new URLSearchParams({ sort: q.sort, order: q.order, limit: String(limit), offset: String(q.offset) });
  if (q.q) params.set("q", q.q);
  if (q.status) params.set("status", q.status);
  const data = await api("GET", `/certificates?${params}`);

  const sortHead = (label, key) => {
    const active = q.sort === key;
    const arrow = active ? (q.order === "asc" ? " ▲" : " ▼") : "";
    return h("th", h("button.sort", { type: "button", "aria-sort": active ? (q.order === "asc" ? "ascending" : "descending") : "none", onclick: () => go({ sort: key, order: active && q.order === "desc" ? "asc" : active ? "desc" : key === "created" || key === "expiry" ? "desc" : "asc", offset: 0 }) }, label + arrow));
  };
  const rows = data.items.map((c) =>
    h(
      "tr.clickable",
      { onclick: () => (location.hash = `#/certificates/${c.serial}`), dataset: { serial: c.serial } },
      td("Subject", h("a", { href: `#/certificates/${c.serial}` }, c.subject || "(empty subject)")),
      td("SANs", c.sans.length ? c.sans.join(", ") : h("span.muted", "—")),
      td("Serial", h("code", { title: c.serial }, shortSerial(c.serial))),
      td("Status", statusBadge(c.status)),
      td("Expires", fmtDate(c.notAfter), h("div.muted.small", c.daysLeft >= 0 ? `${c.daysLeft} days` : "expired")),
      td("Profile", c.profile),
      td("Issued", fmtDate(c.createdAt)),
    ),
  );
  const pager = h(
    "div.pager",
    h("span.muted", data.total ? `${q.offset + 1}–${q.offset + data.items.length} of ${data.total}` : "No certificates match"),
    h("button.btn.btn-ghost.btn-small", { type: "button", disabled: q.offset === 0, onclick: () => go({ offset: Math.max(0, q.offset - limit) }) }, "← Previous"),
    h("button.btn.btn-ghost.btn-small", { type: "button", disabled: q.offset + limit >= data.total, onclick: () => go({ offset: q.offset + limit }) }, "Next →"),
  );
  view.replaceChildren(
    pageHeader("Certificates", plural(data.total, "certificate")),
    h("div.toolbar", search, status, sortSel),
    ...(data.note ? [h("p.muted.small#cert-search-note", data.note)] : []),
    h(
      "div.card.flush",
      h(
        "div.table-wrap",
        h(
          "table.table#cert-table",
          h("thead", h("tr", sortHead("Subject", "subject"), h("th", "SANs"), sortHead("Serial", "serial"), sortHead("Status", "status"), sortHead("Expires", "expiry"), h("th", "Profile"), sortHead("Issued", "created"))),
          h("tbody", rows.length ? rows : h("tr", h("td.empty", { colspan: 7 }, q.q || q.status ? "No certificate matches this search." : "No certificates yet. Enroll one over EST and it appears here."))),
        ),
      ),
      pager,
    ),
  );
  if (q.q) {
    search.focus();
    search.setSelectionRange(search.value.length, search.value.length);
  }
}

async function certificatePage(view, serial) {
  const [c, reasons] = await Promise.all([api("GET", `/certificates/${encodeURIComponent(serial)}`), api("GET", "/revocation-reasons")]);
  const revokeBox = h("div.revoke");
  const renderRevoke = () => {
    if (c.status === "revoked") {
      revokeBox.replaceChildren(h("p", statusBadge("revoked"), ` on ${fmtTime(c.revokedAt)} · reason `, h("strong", c.revocationReason || "unspecified")));
      return;
    }
    const reason = h("select.input#revoke-reason", { "aria-label": "Revocation reason" }, reasons.map((r) => h("option", { value: r }, r)));
    const confirmBtn = h("button.btn.btn-danger#revoke-confirm", { type: "button" }, "Revoke certificate");
    const cancel = h("button.btn.btn-ghost", { type: "button" }, "Cancel");
    const start = h("button.btn.btn-danger-ghost#revoke-start", { type: "button" }, "Revoke…");
    const confirmRow = h("div.confirm", { hidden: true }, h("p", "Revocation is permanent. The certificate is listed in the next CRL and OCSP answers 'revoked'."), h("div.row", reason, confirmBtn, cancel));
    start.addEventListener("click", () => {
      confirmRow.hidden = false;
      start.hidden = true;
    });
    cancel.addEventListener("click", () => {
      confirmRow.hidden = true;
      start.hidden = false;
    });
    confirmBtn.addEventListener("click", async () => {
      confirmBtn.disabled = true;
      try {
        Object.assign(c, await api("POST", `/certificates/${c.serial}/revoke`, { reason: reason.value }));
        toast(`Certificate ${shortSerial(c.serial)} revoked`);
        render();
      } catch (e) {
        toast(e.message, "error");
        confirmBtn.disabled = false;
      }
    });
    revokeBox.replaceChildren(start, confirmRow);
  };
  const render = () => {
    renderRevoke();
    view.replaceChildren(
      h("a.back", { href: "#/certificates" }, "← Certificates"),
      pageHeader(c.subject || "(empty subject)", null, h("a.btn.btn-primary#download-pem", { href: `/api/certificates/${c.serial}/pem`, download: `${c.serial}.pem` }, "Download PEM")),
      h(
        "section.grid-2",
        h(
          "div.card",
          h("h2", "Certificate"),
          kv([
            ["Status", h("span#cert-status", statusBadge(c.status))],
            ["Serial", h("code.wrap", c.serial)],
            ["Subject", c.subject],
            ["Alt. names", c.sans.length ? h("ul.plain", c.sans.map((x) => h("li", h("code", x)))) : "—"],
            ["Issuer", c.issuer],
            ["Valid from", fmtTime(c.notBefore)],
            ["Valid until", h("span", fmtTime(c.notAfter), " ", h("span.muted", c.daysLeft >= 0 ? `(${c.daysLeft} days left)` : "(expired)"))],
            ["Public key", c.publicKey],
            ["Signature", c.signatureAlgorithm],
            ["Key usage", c.keyUsage.join(", ") || "—"],
            ["Extended usage", c.extendedKeyUsage.join(", ") || "—"],
            ["Profile", c.profile],
            ["Requested by", c.requester],
            ["Issued", fmtTime(c.createdAt)],
            c.supersededBy ? ["Superseded by", h("a", { href: `#/certificates/${c.supersededBy}` }, h("code", c.supersededBy))] : null,
            ["SHA-256", h("code.wrap.small", c.sha256Fingerprint)],
          ]),
        ),
        h(
          "div.stack",
          h("div.card", h("div.card-head", h("h2", "PEM"), copyButton(c.pem, "PEM")), h("pre.code.pem", c.pem)),
          h("div.card.danger-zone", h("h2", "Revocation"), revokeBox),
        ),
      ),
    );
  };
  render();
}

// ---------- approvals ----------

async function approvalsPage(view) {
  const [pending, all] = await Promise.all([api("GET", "/approvals?state=pending"), api("GET", "/approvals?state=all")]);
  const decided = all.filter((e) => e.state !== "pending").slice(0, 20);
  const card = (e) => {
    const reason = h("input.input", { type: "text", placeholder: "Reason (required to reject)", "aria-label": `Reason for request ${e.id}`, maxlength: 500 });
    const decide = async (action, btn) => {
      if (action === "reject" && !reason.value.trim()) {
        reason.focus();
        reason.classList.add("invalid");
        toast("A rejection needs a reason: the client is told it", "error");
        return;
      }
      btn.disabled = true;
      try {
        await api("POST", `/approvals/${e.id}/${action}`, { reason: reason.value });
        toast(`Request ${e.id} ${action === "approve" ? "approved" : "rejected"}`);
        route();
      } catch (err) {
        toast(err.message, "error");
        btn.disabled = false;
      }
    };
    const approve = h("button.btn.btn-primary", { type: "button", dataset: { action: "approve" } }, "Approve");
    const reject = h("button.btn.btn-danger-ghost", { type: "button", dataset: { action: "reject" } }, "Reject");
    approve.addEventListener("click", () => decide("approve", approve));
    reject.addEventListener("click", () => decide("reject", reject));
    return h(
      "article.card.approval",
      { dataset: { id: e.id } },
      h("div.card-head", h("h2", e.subject || "(empty subject)"), h("span.badge.badge-neutral", `#${e.id}`)),
      kv([
        ["Alt. names", e.sans.length ? e.sans.join(", ") : "—"],
        ["Profile", e.profile],
        ["Operation", e.operation],
        ["Requested by", e.requester],
        ["Received", fmtTime(e.createdAt)],
        ["Key SHA-256", h("code.wrap.small", e.spkiSha256)],
      ]),
      h("div.decide", reason, approve, reject),
    );
  };
  view.replaceChildren(
    pageHeader("Approvals", pending.length ? `${plural(pending.length, "request")} waiting` : "Nothing is waiting", h("button.btn.btn-ghost", { type: "button", onclick: route }, "Refresh")),
    pending.length ? h("section.approvals", pending.map(card)) : h("div.card.empty-card", h("p", "No requests are waiting for approval."), h("p.muted.small", "Requests to a profile with approval: manual appear here. The client is answered 202 with Retry-After and receives its certificate when it asks again after approval.")),
    h(
      "section.card.flush",
      h("div.card-head.pad", h("h2", "Recently decided")),
      h(
        "div.table-wrap",
        h(
          "table.table",
          h("thead", h("tr", h("th", "#"), h("th", "Subject"), h("th", "State"), h("th", "By"), h("th", "Reason"), h("th", "When"))),
          h(
            "tbody",
            decided.length
              ? decided.map((e) =>
                  h(
                    "tr",
                    td("#", String(e.id)),
                    td("Subject", e.subject),
                    td("State", statusBadge(e.state)),
                    td("By", e.decidedBy || "—"),
                    td("Reason", e.reason || "—"),
                    td("When", fmtTime(e.updatedAt)),
                  ),
                )
              : h("tr", h("td.empty", { colspan: 6 }, "No decisions yet.")),
          ),
        ),
      ),
    ),
  );
}

// ---------- request inspector ----------

async function requestsPage(view) {
  const p = hashParams();
  let client = p.get("client") || "";
  let failures = p.get("failures") === "1";
  let lastId = 0;
  let live = true;
  const filter = h("input.input#req-client", { type: "search", placeholder: "Filter by client (user, certificate subject or address)", value: client, "aria-label": "Filter by client" });
  const failBox = h("input#req-failures", { type: "checkbox", checked: failures });
  const liveBtn = h("button.btn.btn-ghost.btn-small#req-live", { type: "button" });
  const setLive = (on) => {
    live = on;
    liveBtn.replaceChildren(h(`span.dot${on ? ".dot-on" : ""}`), on ? "Live" : "Paused");
  };
  setLive(true);
  liveBtn.addEventListener("click", () => setLive(!live));
  const tbody = h("tbody#req-body");
  const count = h("span.muted");
  const details = (r) =>
    h(
      "tr.details",
      h(
        "td",
        { colspan: 7 },
        kv([
          ["Request id", h("code", r.requestId)],
          ["Request", `${r.method} ${r.label ? `/.well-known/est/${r.label}/` : "/.well-known/est/"}${r.operation}`],
          ["Client", `${r.clientIdentity || "anonymous"} from ${r.clientAddr || "?"}${r.authMethod ? ` (authenticated by ${r.authMethod})` : ""}`],
          ["TLS", r.tlsVersion || "—"],
          ["Answer", `${r.status}${r.reason ? ` · ${r.reason}` : ""}`],
          r.serial ? ["Certificate", h("a", { href: `#/certificates/${r.serial}` }, h("code", r.serial))] : null,
          r.enrollmentId ? ["Held request", h("a", { href: "#/approvals" }, `#${r.enrollmentId}`)] : null,
        ]),
      ),
    );
  const toggle = (tr, r) => {
    const next = tr.nextElementSibling;
    if (next && next.classList.contains("details")) next.remove();
    else tr.after(details(r));
  };
  const row = (r) => {
    const failed = r.status >= 400;
    const tr = h(
      `tr.clickable${failed ? ".failed" : ""}`,
      { dataset: { id: r.id, requestId: r.requestId } },
      td("Time", h("span", { title: `request id ${r.requestId}` }, fmtTime(r.at))),
      td("Operation", h("code", r.operation), r.label ? h("div.muted.small", `label ${r.label}`) : null),
      td("Client", r.clientIdentity || h("span.muted", "anonymous"), h("div.muted.small", r.clientAddr || "")),
      td("TLS", r.tlsVersion || "—"),
      td("Status", httpBadge(r.status)),
      td("Reason", r.reason ? h("span.reason-text", r.reason) : r.serial ? h("span.muted", "issued ", h("a", { href: `#/certificates/${r.serial}` }, shortSerial(r.serial))) : r.enrollmentId ? h("span.muted", `held for approval (#${r.enrollmentId})`) : h("span.muted", "—")),
      td("Time taken", r.durationMs === null ? "—" : `${Math.round(r.durationMs)} ms`),
    );
    tr.addEventListener("click", (ev) => {
      if (ev.target.closest("a")) return;
      toggle(tr, r);
    });
    return tr;
  };
  const query = (after) => {
    const u = new URLSearchParams({ limit: "200" });
    if (client) u.set("client", client);
    if (failures) u.set("failures", "1");
    if (after) u.set("afterId", String(after));
    return `/requests?${u}`;
  };
  const load = async () => {
    const rows = await api("GET", query(0));
    lastId = rows.length ? rows[0].id : lastId;
    tbody.replaceChildren(...(rows.length ? rows.map(row) : [h("tr.empty-row", h("td.empty", { colspan: 7 }, client || failures ? "No EST request matches this filter yet." : "No EST requests yet."))]));
    count.textContent = plural(rows.length, "request");
  };
  const poll = async () => {
    if (!live || document.hidden) return;
    try {
      const rows = await api("GET", query(lastId));
      if (!rows.length) return;
      lastId = rows[0].id;
      tbody.querySelector(".empty-row")?.remove();
      const fresh = rows.map(row);
      for (const tr of fresh) tr.classList.add("fresh");
      tbody.prepend(...fresh);
      while (tbody.querySelectorAll("tr[data-id]").length > 500) tbody.lastChild.remove();
      count.textContent = plural(tbody.querySelectorAll("tr[data-id]").length, "request");
    } catch {
      /* next tick */
    }
  };
  let debounce;
  filter.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      client = filter.value.trim();
      history.replaceState(null, "", `#/requests${client || failures ? "?" + new URLSearchParams({ ...(client ? { client } : {}), ...(failures ? { failures: "1" } : {}) }) : ""}`);
      load();
    }, 300);
  });
  failBox.addEventListener("change", () => {
    failures = failBox.checked;
    load();
  });
  view.replaceChildren(
    pageHeader("Request inspector", "Every EST request with the exact reason a failure was refused. Keep it open while you debug a client.", liveBtn),
    h("div.toolbar", filter, h("label.check", failBox, "Failures only"), count),
    h(
      "div.card.flush",
      h(
        "div.table-wrap",
        h("table.table.requests#req-table", h("thead", h("tr", h("th", "Time"), h("th", "Operation"), h("th", "Client"), h("th", "TLS"), h("th", "Status"), h("th", "Reason / result"), h("th", "Took"))), tbody),
      ),
    ),
  );
  await load();
  state.timer = setInterval(poll, 2000);
}

// ---------- users ----------

async function usersPage(view) {
  const data = await api("GET", "/users");
  const name = h("input.input#user-name", { required: true, pattern: "[A-Za-z0-9._@\\-]{1,64}", placeholder: "device-042", autocomplete: "off", "aria-label": "User name" });
  const password = h("input.input#user-password", { type: "password", placeholder: "leave empty to generate one", autocomplete: "new-password", minlength: 12, "aria-label": "Password" });
  const labels = data.profiles.map((p) => h("label.check", h("input", { type: "checkbox", value: p, checked: p === "default", name: "labels" }), p));
  const result = h("div.result", { hidden: true });
  const form = h(
    "form.card.add-user#user-form",
    h("h2", "Add an EST user"),
    h("div.form-grid", h("label", "User name", name), h("label", "Password", password)),
    h("fieldset", h("legend", "May enroll under"), h("div.checks", labels)),
    h("div.row", h("button.btn.btn-primary", { type: "submit" }, "Add user")),
    result,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const chosen = labels.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    try {
      const u = await api("POST", "/users", { name: name.value, password: password.value || undefined, labels: chosen });
      toast(`User ${u.name} added`);
      await usersPage(view);
      if (u.password) {
        const r = $("#view .result");
        r.hidden = false;
        r.replaceChildren(h("p", "Generated password for ", h("strong", u.name), " — shown only now:"), h("div.row", h("code.secret", u.password), copyButton(u.password, "password")));
      }
    } catch (e) {
      toast(e.message, "error");
    }
  });
  const remove = async (u, btn) => {
    if (btn.dataset.armed !== "1") {
      btn.dataset.armed = "1";
      btn.textContent = "Confirm remove";
      setTimeout(() => {
        btn.dataset.armed = "";
        btn.textContent = "Remove";
      }, 4000);
      return;
    }
    try {
      await api("DELETE", `/users/${encodeURIComponent(u.name)}`);
      toast(`User ${u.name} removed`);
      usersPage(view);
    } catch (e) {
      toast(e.message, "error");
    }
  };
  view.replaceChildren(
    pageHeader("EST users", "Devices and people that enroll with HTTP Basic credentials."),
    h(
      "section.grid-2.users-grid",
      h(
        "div.card.flush",
        h(
          "div.table-wrap",
          h(
            "table.table#user-table",
            h("thead", h("tr", h("th", "Name"), h("th", "Profiles"), h("th", "Created"), h("th", ""))),
            h(
              "tbody",
              data.users.length
                ? data.users.map((u) => {
                    const btn = h("button.btn.btn-danger-ghost.btn-small", { type: "button", dataset: { user: u.name } }, "Remove");
                    btn.addEventListener("click", () => remove(u, btn));
                    return h("tr", { dataset: { user: u.name } }, td("Name", h("strong", u.name)), td("Profiles", u.labels.map((l) => h("span.badge.badge-neutral", l))), td("Created", fmtDate(u.createdAt)), h("td.actions", btn));
                  })
                : h("tr", h("td.empty", { colspan: 4 }, "No EST users.")),
            ),
          ),
        ),
      ),
      form,
    ),
  );
}

// ---------- start ----------

(async () => {
  try {
    signedIn(await api("GET", "/session"));
  } catch {
    showLogin();
  }
})();
