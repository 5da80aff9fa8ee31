// The auditor's page: plain JavaScript, no libraries, nothing fetched but this server's
// /api (docs/openapi.json). Routes live in the URL fragment: #/ (status and programmes),
// #/applicant/ID (history), #/trace/ID (payment chain). Each link of a trace is checked
// twice: by the server (g60ledger verify-proof's checks) and here, in the browser, with
// WebCrypto: the leaf hash, the RFC 9162 inclusion proof against the checkpoint's root,
// and, where the browser has Ed25519, the checkpoint's signature.
//
// When the server asks for credentials (401), the page asks for an access token and keeps
// it for this tab only (sessionStorage), sending it as "Authorization: Bearer"; a part of
// the page the token's role may not read (403) says so in its place. #/q/NAME?PARAMS
// asks one compliance question (docs/queries.md) with its filters.
"use strict";

const $ = (sel) => document.querySelector(sel);

function fen(v) {
  const neg = v < 0;
  let s = String(Math.abs(v)).padStart(3, "0");
  const cents = s.slice(-2);
  let yuan = s.slice(0, -2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (neg ? "-" : "") + yuan + "." + cents;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

const TOKEN_KEY = "g60ledger.token";

// An answer the server refused: its status and its sentence.
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(path, { cache: "no-store", headers });
  let body = {};
  try {
    body = await res.json();
  } catch (e) {
    if (res.ok) throw e;
  }
  if (!res.ok) throw new ApiError(res.status, body.error || `HTTP ${res.status}`);
  return body;
}

function askForToken(reason) {
  $("#token-form").hidden = false;
  $("#token-reason").textContent = reason || "";
  $("#token-input").focus();
}

function showError(message) {
  const p = $("#error");
  p.textContent = message;
  p.hidden = !message;
}

function show(section) {
  for (const id of ["home", "applicant", "trace", "questions"]) $("#" + id).hidden = id !== section;
}

// ---- status and programmes

async function renderHome() {
  show("home");
  const [status, programmes] = await Promise.all([api("/api/status"), api("/api/programmes")]);
  const verified = status.checkpoints_verified;
  $("#status-summary").replaceChildren(
    el("span", { class: verified ? "ok" : "bad", id: "status-verdict",
                 text: verified ? "Checkpoints verified" : "Checkpoint problem" }),
    ` — ledger ${status.ledger || "(no checkpoint yet)"}, ${status.entries} entries, ` +
      `${status.entries_covered_by_checkpoints} covered by signed checkpoints. Key: `,
    el("code", { text: status.verifier_key || "none" }),
    status.key_from_ledger ? " (as the ledger names it: compare with your own copy)" : "");
  const tbody = $("#status-table tbody");
  tbody.replaceChildren();
  for (const p of status.partitions) {
    const c = p.checkpoint;
    tbody.append(el("tr", {},
      el("td", { text: p.partition }), el("td", { class: "num", text: p.size }),
      el("td", {}, el("code", { text: p.head_hash.slice(0, 16) + "…" })),
      el("td", {}, el("code", { text: p.merkle_root.slice(0, 16) + "…" })),
      el("td", { class: "num", text: c ? c.size : "—" }),
      el("td", { class: c && c.verified ? "ok" : "bad",
                 text: c ? (c.verified ? "signature and root verified" : c.problem) : "none" })));
  }
  // Totals per programme over every year.
  const byProgramme = new Map();
  for (const r of programmes.rows) {
    const t = byProgramme.get(r.programme) || { programme: r.programme, level: r.level, approved: 0,
      paid: 0, clawed: 0, largest: 0, cap: r.cap_per_approval_fen, over: false };
    t.approved += r.approved_fen; t.paid += r.paid_fen; t.clawed += r.clawed_back_fen;
    t.largest = Math.max(t.largest, r.largest_approval_fen); t.over = t.over || r.over_cap;
    byProgramme.set(r.programme, t);
  }
  const all = [...byProgramme.values()];
  const max = Math.max(1, ...all.map((t) => t.approved));
  const box = $("#programmes");
  box.replaceChildren();
  const svgNS = "http://www.w3.org/2000/svg";
  for (const t of all) {
    const row = el("div", { class: "programme", "data-programme": t.programme });
    row.append(el("div", { class: "pname", text: `${t.programme} (${t.level.toLowerCase()})` }));
    const svg = document.createElementNS(svgNS, "svg");
    svg.setAttribute("viewBox", "0 0 400 36");
    svg.setAttribute("class", "bars");
    [["approved", t.approved, 0], ["paid", t.paid, 12], ["clawed", t.clawed, 24]].forEach(
      ([cls, v, y]) => {
        const r = document.createElementNS(svgNS, "rect");
        r.setAttribute("x", 0); r.setAttribute("y", y); r.setAttribute("height", 10);
        r.setAttribute("width", Math.max(v > 0 ? 1 : 0, (400 * v) / max));
        r.setAttribute("class", cls);
        const title = document.createElementNS(svgNS, "title");
        title.textContent = `${cls}: ${fen(v)} CNY`;
        r.append(title);
        svg.append(r);
      });
    row.append(svg);
    row.append(el("div", { class: "figures",
      text: `approved ${fen(t.approved)} · paid ${fen(t.paid)} · clawed back ${fen(t.clawed)}` }));
    const pct = t.cap > 0 ? Math.round((100 * t.largest) / t.cap) : null;
    row.append(el("div", { class: "gauge " + (t.over ? "bad" : "ok"),
      text: pct === null ? "no cap per approval"
                         : `largest approval ${fen(t.largest)} = ${pct}% of cap ${fen(t.cap)}` +
                           (t.over ? " — OVER CAP" : "") }));
    box.append(row);
  }
  const total = (programmes.summary || [])[0];
  if (total) {
    box.append(el("p", { class: "summary", id: "programmes-total",
      text: `All programmes: ${total.approvals} approvals, approved ${fen(total.approved_fen)}, ` +
            `paid ${fen(total.paid_fen)}, clawed back ${fen(total.clawed_back_fen)}, ` +
            `net paid ${fen(total.net_paid_fen)} CNY. Over a cap (per approval, or ratio × ` +
            `declared base): ${all.filter((t) => t.over).map((t) => t.programme).join(", ") || "none"}.` }));
  }
  if (programmes.position) {
    box.append(el("p", { class: "hint position", text: positionText(programmes.position) }));
  }
  // Reports name applicants: a role that may not read them gets its reason in their place.
  const report = (box, ...args) => renderReport(box, ...args).catch((e) => {
    if (!(e instanceof ApiError) || e.status !== 403) throw e;
    box.replaceChildren(el("p", { class: "hint forbidden", text: e.message }));
  });
  await Promise.all([
    report($("#report-overlaps"), "/api/overlaps",
                 ["decision", "applicant_id", "approval_event_id", "programme", "approved_fen",
                  "winning_approval", "winning_programme", "winning_fen", "carried_over_fen"]),
    report($("#report-clawbacks"), "/api/clawbacks",
                 ["occurred_at", "applicant_id", "event_id", "payments", "approval_event_id",
                  "programme", "amount_fen", "reason_text"]),
    report($("#report-rejections"), "/api/rejections",
                 ["occurred_at", "applicant_id", "event_id", "type", "programme", "reason", "detail"]),
    report($("#report-catalogues"), "/api/catalogues", null),
  ]);
}

// ---- reports: a query's rows as a table, its summary above, "More" for the next page

const LABELS = { approval_event_id: "approval", winning_approval: "winner",
                 winning_programme: "winner's programme", winning_fen: "winner's amount",
                 carried_over_fen: "carried over", approved_fen: "approved", amount_fen: "amount",
                 applicant_id: "applicant", event_id: "event", reason_text: "reason given",
                 occurred_at: "occurred (CST)" };
// Amounts are shown in CNY and ratios in percent, so their columns say so, not "fen"/"bp".
const label = (c) => LABELS[c] ||
  (c.endsWith("_fen") ? `${c.slice(0, -4).replace(/_/g, " ")} (CNY)`
   : c.endsWith("_bp") ? `${c.slice(0, -3).replace(/_/g, " ")} (%)`
   : c.replace(/_/g, " "));

// Event ids are unique per applicant (docs/formats.md, "Event identity"): a link to a
// trace names the applicant too, as #/trace/ID/APPLICANT with each part percent-encoded.
function traceHref(id, applicant) {
  const tail = applicant ? `/${encodeURIComponent(applicant)}` : "";
  return `#/trace/${encodeURIComponent(id)}${tail}`;
}

function cell(column, value, row) {
  if (column.endsWith("_fen")) {
    return el("td", { class: "num", text: value === null || value === undefined ? "" : fen(value) });
  }
  if (column.endsWith("_bp") && typeof value === "number") {
    return el("td", { class: "num", text: `${(value / 100).toFixed(2)}%` });
  }
  if (Array.isArray(value)) {  // the entries behind a double-funding flag
    return el("td", { text: value.map((e) => `${e.partition}/${e.sequence} ${e.event_id}`).join(", ") });
  }
  if (["approval_a", "approval_b", "application_event_id"].includes(column) && value) {
    return el("td", {}, el("a", { href: traceHref(value, row && row.applicant_id), text: value }));
  }
  if (["approval_event_id", "winning_approval", "event_id"].includes(column) && value) {
    return el("td", {}, el("a", { href: traceHref(value, row && row.applicant_id), text: value }));
  }
  if (column === "applicant_id" && value) {
    return el("td", {}, el("a", { href: `#/applicant/${encodeURIComponent(value)}`, text: value }));
  }
  return el("td", { text: value === null || value === undefined ? "" : String(value) });
}

// The ledger position an answer was computed at, for reproducing and proving it later.
function positionText(position) {
  return "Computed at " + position.map((p) => `partition ${p.partition}: ${p.size} entries` +
    (p.checkpoint_size === null ? " (no checkpoint yet)"
                                : p.covered ? " (all signed)" : ` (signed up to ${p.checkpoint_size})`))
    .join("; ") + ".";
}

// Endpoints that return one whole answer take no limit or after.
const UNPAGED = ["/api/catalogues", "/api/programmes", "/totals", "/headroom"];

// `columns` null: the answer's own columns.
async function renderReport(box, path, columns, after = "") {
  const paged = !UNPAGED.some((u) => path.split("?")[0].endsWith(u));
  const r = await api(paged ? path + (path.includes("?") ? "&" : "?") + "limit=25" +
                              (after ? `&after=${encodeURIComponent(after)}` : "")
                            : path);
  columns = columns || r.columns;
  let table = box.querySelector("table.rows");
  if (!after) {
    box.replaceChildren();
    if (r.summary && r.summary.length) {
      box.append(el("p", { class: "summary",
        text: r.summary.map((s) => Object.entries(s).map(([k, v]) =>
          k.endsWith("_fen") ? `${label(k)} ${fen(v)}`
          : k.endsWith("_bp") && typeof v === "number" ? `${label(k)} ${(v / 100).toFixed(2)}`
          : `${label(k)} ${v}`).join(", ")).join(" · ") }));
    }
    table = el("table", { class: "rows" },
      el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", { text: label(c) })))), el("tbody"));
    box.append(table);
  }
  for (const row of r.rows) {
    table.tBodies[0].append(el("tr", {}, ...columns.map((c) => cell(c, row[c], row))));
  }
  box.querySelector("button.more")?.remove();
  box.querySelector("p.position")?.remove();
  if (r.next) {
    const more = el("button", { type: "button", class: "more", text: "More" });
    more.onclick = () => renderReport(box, path, columns, r.next).catch((e) => showError(e.message));
    box.append(more);
  }
  if (!r.rows.length && !after) box.append(el("p", { class: "hint", text: "None." }));
  if (r.position) box.append(el("p", { class: "hint position", text: positionText(r.position) }));
}

// ---- applicant history

async function renderApplicant(id, after = "") {
  show("applicant");
  const q = `/api/applicants/${encodeURIComponent(id)}?limit=200` +
            (after ? `&after=${encodeURIComponent(after)}` : "");
  const r = await api(q);
  $("#applicant-title").textContent = `Applicant ${id}`;
  if (!after) {
    const totals = $("#applicant-totals tbody");
    totals.replaceChildren();
    for (const s of r.summary || []) {
      totals.append(el("tr", {}, el("td", { text: s.programme || "—" }),
        el("td", { class: "num", text: s.entries }), el("td", { class: "num", text: s.rejected }),
        el("td", { class: "num", text: fen(s.approved_fen) }),
        el("td", { class: "num", text: fen(s.paid_fen) }),
        el("td", { class: "num", text: fen(s.clawed_back_fen) })));
    }
    $("#history tbody").replaceChildren();
    const enc = encodeURIComponent(id);
    await Promise.all([renderReport($("#applicant-years"), `/api/applicants/${enc}/totals`, null),
                       renderReport($("#applicant-headroom"), `/api/applicants/${enc}/headroom`, null)]);
  }
  const tbody = $("#history tbody");
  for (const row of r.rows) {
    const traceable = ["application", "approval", "stage-payment", "clawback"].includes(row.type) &&
                      row.verdict === "ACCEPTED";
    const idCell = traceable
      ? el("a", { href: traceHref(row.event_id, row.applicant_id), class: "trace-link",
                  text: row.event_id })
      : document.createTextNode(row.event_id);
    tbody.append(el("tr", { class: row.verdict === "ACCEPTED" ? "" : "rejected" },
      el("td", { text: `${row.partition}/${row.sequence}` }), el("td", { text: row.occurred_at }),
      el("td", { text: row.type }), el("td", {}, idCell), el("td", { text: row.programme }),
      el("td", { text: row.verdict === "ACCEPTED" ? "accepted" : `rejected: ${row.reason}` }),
      el("td", { class: "num", text: fen(row.amount_fen) }), el("td", { text: row.detail })));
  }
  const more = $("#history-more");
  more.hidden = !r.next;
  more.onclick = () => renderApplicant(id, r.next).catch((e) => showError(e.message));
}

// ---- trace, with the proofs checked in this browser

const b64bytes = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
};
const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// RFC 9162 section 2.1.3.2.
async function verifyInclusion(index, size, leaf, proof, root) {
  if (index >= size) return false;
  let fn = index, sn = size - 1, r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat(Uint8Array.of(1), p, r));
      if (fn % 2 === 0) {
        do { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); } while (fn % 2 === 0 && fn !== 0);
      }
    } else {
      r = await sha256(concat(Uint8Array.of(1), r, p));
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

// The checkpoint note's signature by the ledger key, if this browser has Ed25519.
async function verifyNote(note, verifierKey) {
  // NAME+HASH+BASE64(0x01 || key); the name holds no '+', the base64 may.
  const first = verifierKey.indexOf("+");
  const name = verifierKey.slice(0, first);
  const rest = verifierKey.slice(first + 1);
  const keyB64 = rest.slice(rest.indexOf("+") + 1);
  const split = note.indexOf("\n\n");
  const text = new TextEncoder().encode(note.slice(0, split + 1));
  const prefix = `\u2014 ${name} `;
  const line = note.slice(split + 2).split("\n").find((l) => l.startsWith(prefix));
  if (!line) return "no signature by the ledger key";
  const sig = b64bytes(line.slice(prefix.length)).slice(4);
  try {
    const key = await crypto.subtle.importKey("raw", b64bytes(keyB64).slice(1), { name: "Ed25519" },
                                              false, ["verify"]);
    return (await crypto.subtle.verify({ name: "Ed25519" }, key, sig, text)) ? "ok" : "bad signature";
  } catch (e) {
    return "not checked here (no Ed25519 in this browser's WebCrypto)";
  }
}

async function checkLink(link, verifierKey) {
  const entry = b64bytes(link.entry);
  const leaf = await sha256(concat(Uint8Array.of(0), entry));
  if (!equal(leaf, b64bytes(link.leaf_hash))) return { ok: false, what: "leaf hash differs from the entry" };
  const lines = link.checkpoint.split("\n");
  const size = Number(lines[1]);
  const root = b64bytes(lines[2]);
  const ip = link.inclusion_proof;
  if (ip.tree_size !== size || ip.leaf_index !== link.sequence) {
    return { ok: false, what: "proof does not name this entry and checkpoint" };
  }
  const proved = await verifyInclusion(ip.leaf_index, ip.tree_size, leaf,
                                       ip.hashes.map(b64bytes), root);
  if (!proved) return { ok: false, what: "inclusion proof fails against the checkpoint root" };
  const sig = await verifyNote(link.checkpoint, verifierKey);
  if (sig !== "ok" && !sig.startsWith("not checked")) return { ok: false, what: `checkpoint: ${sig}` };
  return { ok: true, what: `inclusion proved against ${lines[0]} size ${size}; checkpoint signature ${sig}` };
}

async function renderTrace(id, applicant) {
  show("trace");
  $("#trace-title").textContent = applicant ? `Payment chain of ${id} (${applicant})`
                                            : `Payment chain of ${id}`;
  $("#trace-links").replaceChildren();
  $("#trace-verdict").textContent = "Checking…";
  const query = applicant ? `?applicant=${encodeURIComponent(applicant)}` : "";
  const [t, status] = await Promise.all([api(`/api/traces/${encodeURIComponent(id)}${query}`),
                                         api("/api/status")]);
  const list = $("#trace-links");
  let allOk = t.verification.ok;
  // The catalogue each link was decided under, beside the bundle.
  const catalogOf = new Map((t.catalogs || []).map((c) => [`${c.partition}/${c.sequence}`, c.catalog]));
  for (const link of t.bundle.links) {
    const mine = await checkLink(link, status.verifier_key);
    allOk = allOk && mine.ok;
    const li = el("li", { class: "link " + (mine.ok && t.verification.ok ? "proof-ok" : "proof-bad"),
                          "data-role": link.role, "data-event": link.event_id });
    li.append(el("div", { class: "role", text: link.role }),
      el("div", { class: "what" },
        el("strong", { text: link.event_id || "(undecodable)" }),
        ` — ${link.verdict.toLowerCase()}${link.verdict === "REJECTED" ? " (" + link.reason + ")" : ""}, ` +
        `${fen(link.amount_fen)} CNY, entry ${link.partition}/${link.sequence}` +
        (catalogOf.get(`${link.partition}/${link.sequence}`)
          ? `, catalogue ${catalogOf.get(`${link.partition}/${link.sequence}`)}` : ""),
        el("div", { class: "detail", text: link.detail })),
      el("div", { class: "check", text: (mine.ok ? "✔ " : "✘ ") + mine.what }));
    list.append(li);
  }
  const v = $("#trace-verdict");
  v.className = allOk ? "ok" : "bad";
  v.id = "trace-verdict";
  v.textContent = allOk
    ? `Every link verifies: the server's checks (signatures back to a trust anchor, roles, ` +
      `inclusion) and this browser's (leaf hashes, inclusion proofs, checkpoint signatures).`
    : `Verification FAILED: ${t.verification.error || "a proof did not verify in this browser"}`;
}

// ---- questions: any of the compliance queries with its filters, as a table

// Each question's endpoint and the parameters its form offers.
const QUESTIONS = {
  "history": ["applicant", "from", "to", "programme", "level", "source", "min_fen", "max_fen"],
  "payments": ["from", "to", "applicant", "programme", "level", "source", "min_fen", "max_fen"],
  "rejections": ["from", "to", "applicant", "programme", "level", "reason", "min_fen", "max_fen"],
  "pending": ["from", "to", "applicant", "programme", "level", "min_fen", "max_fen"],
  "unpaid": ["from", "to", "applicant", "programme", "level", "min_fen", "max_fen"],
  "decisions": ["key", "from", "to", "applicant", "programme", "level", "min_fen", "max_fen"],
  "near-caps": ["within"],
  "double-funding": [],
  "catalogues": [],
  "programmes": ["year"],
  "outstanding": [],
  "overlaps": [],
  "clawbacks": ["from", "to"],
};

function questionForm(name, params) {
  const select = $("#question-select");
  select.replaceChildren(...Object.keys(QUESTIONS).map((q) => el("option", { value: q, text: q })));
  select.value = name;
  const fields = $("#question-fields");
  fields.replaceChildren();
  for (const p of QUESTIONS[name]) {
    fields.append(el("label", { for: `q-${p}`, text: p.replace(/_/g, " ") }),
                  el("input", { id: `q-${p}`, name: p, value: params.get(p) || "" }));
  }
}

async function renderQuestion(name, query) {
  show("questions");
  if (!(name in QUESTIONS)) name = "double-funding";
  const params = new URLSearchParams(query);
  questionForm(name, params);
  for (const [k, v] of [...params]) if (!v) params.delete(k);
  const qs = params.toString();
  $("#question-title").textContent = name + (qs ? ` (${qs})` : "");
  let path = `/api/${name}`;
  if (name === "history") {  // an applicant's history, filtered: the applicant is in the path
    const applicant = params.get("applicant");
    if (!applicant) {
      $("#question-result").replaceChildren(el("p", { class: "hint", text: "Give an applicant." }));
      return;
    }
    params.delete("applicant");
    path = `/api/applicants/${encodeURIComponent(applicant)}`;
  }
  const rest = params.toString();
  await renderReport($("#question-result"), path + (rest ? "?" + rest : ""), null);
}

// ---- routing

async function route() {
  showError("");
  let h, raw;
  try {
    raw = location.hash.replace(/^#\/?/, "");
    h = decodeURIComponent(raw);
  } catch (e) {
    showError(`The address after # is not percent-encoded text (${location.hash}): ` +
              "write an id's '%' as %25, or follow a link of this page.");
    document.body.dataset.ready = "error";
    return;
  }
  try {
    if (h.startsWith("applicant/")) await renderApplicant(h.slice(10));
    else if (raw.startsWith("trace/")) {
      // #/trace/ID or #/trace/ID/APPLICANT, each part percent-encoded ('/' in an id is %2F).
      const [id, applicant] = raw.slice(6).split("/").map(decodeURIComponent);
      await renderTrace(id, applicant);
    }
    else if (h.startsWith("q/")) {
      const [name, query] = h.slice(2).split("?");
      await renderQuestion(name, query || "");
    }
    else await renderHome();
    document.body.dataset.ready = h || "home";
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      askForToken(e.message);
      document.body.dataset.ready = "token";
      return;
    }
    showError(e.message);
    document.body.dataset.ready = "error";
  }
}

$("#token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const token = $("#token-input").value.trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("#token-input").value = "";
  $("#token-form").hidden = true;
  $("#token-change").hidden = false;
  delete document.body.dataset.ready;
  route();
});
$("#token-change").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  $("#token-change").hidden = true;
  askForToken("");
});
$("#token-change").hidden = !sessionStorage.getItem(TOKEN_KEY);

$("#search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const id = $("#applicant-input").value.trim();
  if (id) location.hash = `#/applicant/${encodeURIComponent(id)}`;
});
$("#trace-button").addEventListener("click", () => {
  const id = $("#trace-input").value.trim();
  if (id) location.hash = `#/trace/${encodeURIComponent(id)}`;
});
$("#question-select").addEventListener("change", () => {
  location.hash = `#/q/${$("#question-select").value}`;
});
$("#question-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const params = new URLSearchParams();
  for (const input of $("#question-fields").querySelectorAll("input")) {
    if (input.value.trim()) params.set(input.name, input.value.trim());
  }
  const qs = params.toString();
  location.hash = `#/q/${$("#question-select").value}${qs ? "?" + qs : ""}`;
});
window.addEventListener("hashchange", () => {
  delete document.body.dataset.ready;
  route();
});
route();
