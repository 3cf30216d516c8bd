/* netguard ui: the traffic map and the policy review view.
 *
 * Plain JavaScript and SVG, no library and no build step. The data is the review API
 * (/api/v1/graph, /policies, /policies/diff, /policies/impact, /policies/approve, /alerts), served
 * the same way by `netguard ui` from files and by the controller.
 *
 * The map: workloads grouped in one box per namespace, laid out left to right by traffic direction
 * (longest-path layering), edges colored by verdict under the current or the candidate policies.
 * Large graphs start with each namespace drawn as one box (edges summed between namespaces); a click
 * opens a namespace (drill-down). From the controller, a large cluster loads as its namespaces
 * (/api/v1/namespaces) and each namespace's graph is fetched when it is opened.
 *
 * The review: policies are fetched a page at a time per namespace (/api/v1/namespaces/{ns}/policies
 * with limit and continue, in namespace order, skipping the namespaces filtered out), each with its
 * namespace's diff and impact; "show more" fetches the next pages. A workload selected on the map
 * whose policy is not loaded yet is fetched on its own (/api/v1/workloads/{ns}/{kind}/{name}/policy).
 */
"use strict";

(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const VERDICTS = ["allowed", "denied", "not-covered"];
  const VERDICT_TEXT = { allowed: "allowed", denied: "would be denied", "not-covered": "not covered by any policy" };
  const WORST = { denied: 3, "not-covered": 2, allowed: 1 };
  const OUTSIDE = "(outside)";
  const AUTO_COLLAPSE = 120; // more workloads than this: namespaces start as one box each
  const LABELS_UP_TO = 250; // edge labels drawn when fewer visible edges than this
  const NODE_W = 160, NODE_H = 36, COL_GAP = 84, ROW_GAP = 14, PAD = 16, HEAD = 30, GROUP_GAP = 34, GCOL_GAP = 76;

  const state = {
    graph: null, policies: null, diff: null, impact: null, alerts: [], waf: { targets: {} },
    byId: new Map(), mode: "current", hiddenNs: new Set(), verdicts: new Set(VERDICTS),
    label: "", port: "", search: "", expanded: new Set(), selected: null, view: null,
    viewBox: null, info: {}, reviewLimit: 300, reviewStatus: "all", review: null, single: new Map(),
  };
  const REVIEW_PAGE = 100; // policies per request
  window.netguard = { state, ready: false, layoutMs: 0 };

  // ---- small helpers ------------------------------------------------------------------------
  const $ = (sel) => document.querySelector(sel);
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "html") node.innerHTML = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) node.setAttribute(k, v);
    return node;
  }
  const fmtInt = (n) => (n || 0).toLocaleString("en-US");
  function fmtBytes(n) {
    n = n || 0;
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }
  function fmtTime(t) {
    if (!t) return "—";
    const d = new Date(t * 1000);
    return isNaN(d) ? String(t) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }
  function ago(t) {
    if (!t) return "";
    const s = Date.now() / 1000 - t;
    if (s < 0) return "";
    if (s < 90) return Math.round(s) + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 129600) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }
  function truncate(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }
  function toast(message, error) {
    const t = $("#toast");
    t.textContent = message;
    t.className = "toast" + (error ? " error" : "");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => t.classList.add("hidden"), error ? 6000 : 2500);
  }
  async function api(path, options) {
    const response = await fetch(path, Object.assign({ headers: { Accept: "application/json" } }, options || {}));
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
      throw new Error(`${path}: ${response.status} ${detail}`);
    }
    return response.json();
  }
  const verdictOf = (edge) => (state.mode === "candidate" ? edge.candidate_verdict : edge.verdict) || "not-covered";
  const groupOf = (node) => node.namespace || OUTSIDE;
  const workloadKey = (node) => `${node.namespace}/${node.workload_kind}/${node.name}`;
  const VERDICT_SHORT = { allowed: "allowed", denied: "denied", "not-covered": "not covered" };
  function verdictBadge(v) {
    return el("span", { class: "verdict " + (v || "not-covered"), title: VERDICT_TEXT[v] || "" }, VERDICT_SHORT[v] || v || "—");
  }

  // ---- loading -------------------------------------------------------------------------------
  async function loadAll() {
    const info = await api("/ui/info").catch(() => ({}));
    state.info = info;
    const overview = info.mode === "controller" ? await api("/api/v1/namespaces").catch(() => null) : null;
    const total = overview ? overview.namespaces.reduce((sum, n) => sum + n.workloads, 0) : 0;
    if (overview && total > AUTO_COLLAPSE && overview.namespaces.length > 1) {
      state.lazy = { loaded: new Set() }; // a large cluster: its namespaces first, each opened on demand
      setGraph(overviewGraph(overview, total));
    } else {
      setGraph(await api("/api/v1/graph"));
    }
    render(); // the map first; alerts, WAF blocks and the review data follow
    const side = await Promise.allSettled([api("/api/v1/alerts"), api("/ui/waf")]);
    if (side[0].status === "fulfilled") state.alerts = normalizeAlerts(side[0].value);
    if (side[1].status === "fulfilled") state.waf = side[1].value;
    for (const s of side) if (s.status === "rejected") console.warn(String(s.reason));
    if (state.alerts.length || state.waf.blocked) render();
    $("#review-list").replaceChildren(el("div", { class: "card" }, "Loading the generated policies…"));
    try {
      await loadReview();
      renderDetails();
      if (parseHash().view === "review") route();
    } catch (err) {
      $("#review-list").replaceChildren(el("div", { class: "card warn" }, "Could not load the review: " + (err.message || err)));
      console.warn(String(err));
    }
    window.netguard.reviewReady = true;
  }
  // The review, paged: per namespace (in order), `limit` policies at a time with the `continue` token.
  async function loadReview() {
    const overview = await api("/api/v1/namespaces");
    const before = state.review;
    const r = state.review = { order: overview.namespaces.filter((n) => n.policies > 0).map((n) => n.name),
      total: overview.namespaces.reduce((sum, n) => sum + (n.policies || 0), 0), links: overview.links || [],
      edges: new Map(overview.namespaces.map((n) => [n.name, n.edges || 0])), loaded: new Map(), parts: new Map(), warnings: [] };
    if (before) { // a refresh: what was loaded, again (each namespace in one request)
      await Promise.all([...before.loaded.entries()].filter(([ns]) => r.order.includes(ns))
        .map(([ns, page]) => fetchPolicies(ns, Math.max(page.items.length, 1), true)));
    }
    await loadMore(Math.max(0, state.reviewLimit - loadedCount()));
    state.audit = ((await api("/api/v1/audit").catch(() => ({ audit: [] }))).audit) || [];
    state.single = new Map();
    const open = [...document.querySelectorAll(".policy .body:not(.hidden)")].map((b) => b.parentElement.dataset.workload);
    renderReview();
    for (const w of open) { const b = document.querySelector(`.policy[data-workload="${CSS.escape(w)}"] .body`); if (b) openCard(b, true); }
  }
  const loadedCount = () => [...state.review.loaded.values()].reduce((sum, p) => sum + p.items.length, 0);
  // One page of a namespace's policies (from the start when `again`), with its diff and impact once.
  async function fetchPolicies(ns, limit, again) {
    const r = state.review;
    const page = (!again && r.loaded.get(ns)) || { items: [], next: "", done: false };
    const query = new URLSearchParams({ limit: String(limit) });
    if (page.next) query.set("continue", page.next);
    const path = `/api/v1/namespaces/${encodeURIComponent(ns)}`;
    const [doc] = await Promise.all([api(`${path}/policies?${query}`), r.parts.has(ns) ? null
      : Promise.all([api(`${path}/diff`), api(`${path}/impact`)]).then(([diff, impact]) => r.parts.set(ns, { diff, impact }))]);
    page.items.push(...doc.policies);
    page.next = (doc.metadata || {}).continue || "";
    page.done = !page.next;
    r.loaded.set(ns, page);
    r.warnings = doc.warnings || [];
    assembleReview();
    return doc.policies.length;
  }
  // At least `n` more policies of the namespaces shown (fewer when there are no more).
  async function loadMore(n) {
    const r = state.review;
    while (n > 0) {
      const ns = r.order.find((x) => !state.hiddenNs.has(x) && !(r.loaded.get(x) || {}).done);
      if (!ns) break;
      n -= await fetchPolicies(ns, Math.min(REVIEW_PAGE, Math.max(n, 1)));
    }
    assembleReview();
  }
  async function loadNamespace(ns) {
    const r = state.review;
    while (r && r.order.includes(ns) && !(r.loaded.get(ns) || {}).done) await fetchPolicies(ns, REVIEW_PAGE);
  }
  // What renderReview shows, from the namespaces loaded: their policies, diffs and impacts joined.
  function assembleReview() {
    const r = state.review;
    const policies = [], changes = [], impact = { current: { denied: [], edges: 0 }, candidate: { denied: [], edges: 0 } };
    const seen = { current: new Set(), candidate: new Set() };
    for (const ns of r.order) if (r.loaded.has(ns)) policies.push(...r.loaded.get(ns).items);
    const parts = [...r.parts.keys()];
    for (const part of r.parts.values()) {
      changes.push(...(part.diff.changes || []));
      for (const label of ["current", "candidate"]) {
        const p = part.impact[label] || { denied: [], edges: 0 };
        impact[label].edges += p.edges;
        for (const d of p.denied) { // an edge between two loaded namespaces is in both
          const k = `${d.source}|${d.target}|${d.port}|${d.protocol}`;
          if (!seen[label].has(k)) { seen[label].add(k); impact[label].denied.push(d); }
        }
      }
    }
    const inside = new Set(parts);
    const twice = r.links.filter((l) => l.source !== l.target && inside.has(l.source) && inside.has(l.target)).reduce((a, l) => a + l.edges, 0);
    for (const label of ["current", "candidate"]) impact[label].edges -= twice;
    state.policies = { policies, warnings: r.warnings, total: r.total, more: r.order.some((x) => !state.hiddenNs.has(x) && !(r.loaded.get(x) || {}).done) };
    state.diff = { changes };
    state.impact = impact;
  }

  // ---- writes: the browser's own write token (the UI's token may only read) -------------------
  const TOKEN_KEY = "netguard-write-token";
  function writeOptions(method, body) {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    return { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
  }
  function tokenCard() {
    const input = el("input", { type: "password", id: "write-token", placeholder: "write token (kept in this tab only)", autocomplete: "off",
      value: sessionStorage.getItem(TOKEN_KEY) || "" });
    input.addEventListener("change", () => { input.value ? sessionStorage.setItem(TOKEN_KEY, input.value.trim()) : sessionStorage.removeItem(TOKEN_KEY); });
    return el("div", { class: "card", id: "token-card" }, el("h4", {}, "write token"), input,
      el("div", { class: "sub" }, "approve, apply and remove need a token allowed to write"));
  }

  // ---- apply: dry run per policy, then apply, or remove what netguard applied ---------------------
  const ACTION_TEXT = { create: "would be created", change: "would change", unchanged: "unchanged", refused: "refused by the API server" };
  async function runApply(kind) {
    const out = $("#apply-result");
    out.replaceChildren(el("div", { class: "sub" }, kind === "dry-run" ? "dry run…" : kind === "apply" ? "applying…" : "removing…"));
    try {
      const r = kind === "remove" ? await api("/api/v1/policies/apply", writeOptions("DELETE"))
        : await api("/api/v1/policies/apply", writeOptions("POST", { dry_run: kind === "dry-run" }));
      state.lastApply = { kind, result: r };
      renderApplyResult();
      $("#apply-go").disabled = !dryRunPassed();
      toast(kind === "dry-run" ? `dry run: ${(r.dry_run || []).length} policies` : kind === "apply" ? `applied ${(r.applied || []).length}` : `removed ${(r.removed || []).length}`,
        (r.errors || []).length > 0);
      if (kind !== "dry-run") loadReview().catch(() => {});
    } catch (err) { out.replaceChildren(el("div", { class: "warn" }, String(err.message || err))); toast(String(err.message || err), true); }
  }
  function renderApplyResult() {
    const out = $("#apply-result");
    if (!out || !state.lastApply) return;
    const { kind, result: r } = state.lastApply;
    const rows = [];
    const errors = new Map((r.errors || []).map((e) => [e.ref, e]));
    if (kind === "dry-run") for (const d of r.dry_run || []) rows.push([d.ref, d.workload, errors.has(d.ref) ? "refused" : d.action, errors.has(d.ref) ? errors.get(d.ref).message : "", d.diff]);
    if (kind === "apply") {
      for (const a of r.applied || []) rows.push([a.ref, a.workload, "applied", "", ""]);
      for (const e of r.errors || []) rows.push([e.ref, "", "error", `${e.stage}: ${e.message}`, ""]);
    }
    if (kind === "remove") {
      for (const ref of r.removed || []) rows.push([ref, "", "removed", "", ""]);
      for (const e of r.errors || []) rows.push([e.ref, "", "error", e.message, ""]);
    }
    for (const sk of r.skipped || []) rows.push(["", sk.workload, "skipped", sk.reason, ""]);
    out.replaceChildren(el("table", { class: "grid", id: "apply-table", "data-kind": kind },
      el("tr", {}, el("th", {}, "policy"), el("th", {}, "workload"), el("th", {}, kind === "dry-run" ? "the API server would" : "result"), el("th", {}, "")),
      rows.map(([ref, workload, action, note, diff]) => el("tr", { "data-ref": ref, "data-action": action },
        el("td", {}, ref), el("td", {}, workload), el("td", {}, el("span", { class: "apply-action " + action }, ACTION_TEXT[action] || action)),
        el("td", {}, note, diff ? diffBlock(diff) : null)))),
      ...(rows.length ? [] : [el("div", { class: "sub" }, kind === "remove" ? "nothing netguard applied is left" : "no approved policy in a protect-mode namespace")]));
  }
  function dryRunPassed() {
    const last = state.lastApply;
    return !!last && last.kind === "dry-run" && !(last.result.errors || []).length && (last.result.dry_run || []).length > 0;
  }
  function applyCard() {
    return el("div", { class: "card", id: "apply-card", style: "flex-basis:100%" },
      el("h4", {}, "apply to the cluster (approved policies of protect-mode namespaces)"),
      el("div", { class: "row" },
        el("button", { class: "button", id: "apply-dry-run", onclick: () => runApply("dry-run") }, "Dry run"),
        el("button", { class: "button", id: "apply-go", disabled: !dryRunPassed(), title: "after a dry run that passed", onclick: () => runApply("apply") }, "Apply"),
        el("button", { class: "button ghost", id: "apply-remove", onclick: () => runApply("remove") }, "Remove what netguard applied")),
      el("div", { id: "apply-result" }));
  }
  function auditCard() {
    const rows = (state.audit || []).slice(0, 20);
    return el("div", { class: "card", id: "audit-card", style: "flex-basis:100%" }, el("h4", {}, "audit trail"),
      rows.length ? el("table", { class: "grid", id: "audit-trail" }, rows.map((e) => el("tr", { "data-action": e.action },
        el("td", {}, fmtTime(e.at)), el("td", {}, e.by || ""), el("td", {}, e.action), el("td", {}, e.ref || e.workload), el("td", { class: "digest" }, (e.digest || "").slice(7, 19)))))
        : el("div", { class: "sub" }, "no decisions yet"));
  }

  // ---- live updates: Server-Sent Events from the controller (through this UI's server) -----------
  async function refreshGraph() {
    const [graph, alerts, waf] = await Promise.all([fetchGraph(), api("/api/v1/alerts").catch(() => null), api("/ui/waf").catch(() => null)]);
    setGraph(graph, true);
    if (state.lazy) { // a large cluster: the namespaces again, and the ones open reloaded
      const open = [...state.lazy.loaded];
      state.lazy.loaded = new Set();
      for (const ns of open) await openNamespace(ns);
    }
    if (alerts) state.alerts = normalizeAlerts(alerts);
    if (waf) state.waf = waf;
    render();
  }
  async function fetchGraph() {
    if (!state.lazy) return api("/api/v1/graph");
    const overview = await api("/api/v1/namespaces");
    return overviewGraph(overview, overview.namespaces.reduce((sum, n) => sum + n.workloads, 0));
  }
  function listen() {
    if (!window.EventSource) return;
    const source = new EventSource("/ui/events");
    const count = (kind) => { window.netguard.events = (window.netguard.events || 0) + 1; window.netguard.lastEvent = kind; };
    const later = debounce((fn) => fn().catch((err) => console.warn(String(err))), 200);
    source.addEventListener("hello", () => { window.netguard.live = true; });
    // new edges change the generated policies too (a policy may go back to pending): both are reloaded
    const both = async () => { await refreshGraph(); await loadReview(); };
    for (const kind of ["graph", "alert", "review", "resync"]) source.addEventListener(kind, () => { count(kind); later(both); });
  }
  // One placeholder node per namespace and the traffic between namespaces summed: drawn collapsed.
  const PLACEHOLDER = "namespace:";
  function overviewGraph(overview, total) {
    const nodes = overview.namespaces.map((n) => ({ id: PLACEHOLDER + n.name, kind: "workload", namespace: n.name, name: n.name,
      workload_kind: "", label: `${fmtInt(n.workloads)} workloads`, placeholder: true }));
    const edges = overview.links.map((l) => ({ source: PLACEHOLDER + l.source, target: PLACEHOLDER + l.target,
      key: l.ports.slice(0, 5).join(", ") + (l.ports.length > 5 ? ", …" : ""), port: 0, protocol: "", connections: l.connections,
      bytes: 0, verdict: l.verdict, candidate_verdict: l.candidate_verdict, placeholder: true }));
    const sum = (list, f) => list.reduce((a, x) => a + x[f], 0);
    return { nodes, edges, namespaces: overview.namespaces.map((n) => n.name),
      stats: { workloads: total, nodes: nodes.length, edges: sum(overview.namespaces, "edges"), connections: sum(overview.links, "connections") } };
  }
  // Replace a namespace's placeholder by its own graph (its workloads, their peers, every edge touching it).
  async function openNamespace(ns) {
    if (!state.lazy || state.lazy.loaded.has(ns)) return;
    const part = await api(`/api/v1/namespaces/${encodeURIComponent(ns)}/graph`);
    state.lazy.loaded.add(ns);
    const g = state.graph, ph = PLACEHOLDER + ns;
    g.nodes = g.nodes.filter((n) => n.id !== ph);
    g.edges = g.edges.filter((e) => e.source !== ph && e.target !== ph);
    const ids = new Set(g.nodes.map((n) => n.id));
    for (const n of part.nodes) if (!ids.has(n.id)) { g.nodes.push(n); ids.add(n.id); }
    const keys = new Set(g.edges.map((e) => `${e.source}|${e.target}|${e.key}`));
    for (const e of part.edges) if (!keys.has(`${e.source}|${e.target}|${e.key}`)) { g.edges.push(e); keys.add(`${e.source}|${e.target}|${e.key}`); }
    state.byId = new Map(g.nodes.map((n) => [n.id, n]));
  }
  function normalizeAlerts(data) {
    const list = Array.isArray(data) ? data : (data && (data.alerts || data.items)) || [];
    return list.filter((a) => a && typeof a === "object");
  }
  function setGraph(graph, live) {
    const known = state.graph ? new Set(state.graph.nodes.map(groupOf)) : null;
    state.graph = graph;
    state.byId = new Map(graph.nodes.map((n) => [n.id, n]));
    const workloads = graph.nodes.filter((n) => n.kind === "workload").length;
    const groups = new Set(graph.nodes.map(groupOf));
    const collapse = !!state.lazy || (workloads > AUTO_COLLAPSE && groups.size > 1);
    if (live && known) { for (const g of groups) if (!known.has(g) && !collapse) state.expanded.add(g); } // a live update keeps the view
    else state.expanded = new Set(collapse ? [OUTSIDE] : groups);
    buildFilterLists();
    const s = graph.stats || {};
    $("#summary").innerHTML = `<b>${fmtInt(s.workloads)}</b> workloads · <b>${fmtInt(graph.namespaces.length)}</b> namespaces · <b>${fmtInt(s.edges)}</b> edges · <b>${fmtInt(s.connections)}</b> connections`;
    $("#source").textContent = state.info.mode === "controller" ? `controller ${state.info.controller || ""}` : "local files";
  }

  // ---- filters -------------------------------------------------------------------------------
  function buildFilterLists() {
    const counts = new Map();
    for (const n of state.graph.nodes) counts.set(groupOf(n), (counts.get(groupOf(n)) || 0) + 1);
    const names = [...counts.keys()].sort((a, b) => (a === OUTSIDE) - (b === OUTSIDE) || a.localeCompare(b));
    const list = $("#ns-list");
    list.replaceChildren(...names.map((ns) => el("label", {},
      el("input", { type: "checkbox", value: ns, checked: !state.hiddenNs.has(ns), "data-ns": ns,
        onchange: (e) => { e.target.checked ? state.hiddenNs.delete(ns) : state.hiddenNs.add(ns); render(); } }),
      ns, el("span", { class: "count" }, fmtInt(counts.get(ns))))));
    $("#verdict-list").replaceChildren(...VERDICTS.map((v) => el("label", {},
      el("input", { type: "checkbox", value: v, checked: state.verdicts.has(v), "data-verdict": v,
        onchange: (e) => { e.target.checked ? state.verdicts.add(v) : state.verdicts.delete(v); render(); } }),
      el("span", { class: "verdict " + v }, VERDICT_TEXT[v]))));
    $("#legend").replaceChildren(
      el("div", {}, el("span", { class: "sw", style: "background:var(--allowed)" }), "allowed"),
      el("div", {}, el("span", { class: "sw dash" }), "would be denied"),
      el("div", {}, el("span", { class: "sw", style: "background:var(--notcovered)" }), "not covered (no policy applies)"),
      el("div", {}, el("span", { class: "sw", style: "background:var(--waf)" }), "WAF blocks / ", el("span", { style: "color:var(--alert)" }, "alerts")));
  }
  function parseLabelFilter(text) {
    text = text.trim();
    if (!text) return null;
    const [k, v] = text.split("=", 2).map((s) => s.trim());
    return { key: k, value: v };
  }
  function labelMatches(node, f) {
    const labels = node.labels || {};
    if (f.value === undefined) return Object.prototype.hasOwnProperty.call(labels, f.key);
    return labels[f.key] === f.value;
  }
  function portMatches(edge, text) {
    if (!text) return true;
    const t = text.trim().toLowerCase();
    return String(edge.port) === t || edge.key.toLowerCase() === t || (edge.port_name || "").toLowerCase() === t;
  }
  function searchMatches(node, q) {
    if (!q) return false;
    if (node.id.toLowerCase().includes(q) || (node.label || "").toLowerCase().includes(q)) return true;
    for (const [k, v] of Object.entries(node.labels || {})) if (`${k}=${v}`.toLowerCase().includes(q)) return true;
    return false;
  }

  // ---- the visible graph: filter, then fold closed namespaces into one node ------------------
  function buildView() {
    const g = state.graph;
    const labelF = parseLabelFilter(state.label);
    let keepNode = (n) => !state.hiddenNs.has(groupOf(n));
    const edges = g.edges.filter((e) => {
      const s = state.byId.get(e.source), t = state.byId.get(e.target);
      return s && t && keepNode(s) && keepNode(t) && state.verdicts.has(verdictOf(e)) && portMatches(e, state.port);
    });
    let nodeIds = new Set(g.nodes.filter(keepNode).map((n) => n.id));
    if (state.port || state.verdicts.size < VERDICTS.length) {
      nodeIds = new Set(); // only the nodes that still have an edge
      for (const e of edges) { nodeIds.add(e.source); nodeIds.add(e.target); }
    }
    let shownEdges = edges;
    if (labelF) {
      const matched = new Set([...nodeIds].filter((id) => labelMatches(state.byId.get(id), labelF)));
      shownEdges = edges.filter((e) => matched.has(e.source) || matched.has(e.target));
      nodeIds = new Set(matched);
      for (const e of shownEdges) { nodeIds.add(e.source); nodeIds.add(e.target); }
    }
    const visibleOf = (n) => (n.namespace && !state.expanded.has(n.namespace) ? "ns:" + n.namespace : n.id);
    const vnodes = new Map();
    for (const id of nodeIds) {
      const n = state.byId.get(id);
      const vid = visibleOf(n);
      let v = vnodes.get(vid);
      if (!v) {
        v = vid.startsWith("ns:")
          ? { id: vid, kind: "namespace", namespace: n.namespace, group: n.namespace, label: n.namespace, members: [], inside: 0, insideConnections: 0 }
          : { id: vid, kind: n.kind, namespace: n.namespace, group: groupOf(n), label: n.label || n.name, node: n, members: [n] };
        vnodes.set(vid, v);
      }
      if (v.kind === "namespace") v.members.push(n);
    }
    const vedges = new Map();
    for (const e of shownEdges) {
      const s = visibleOf(state.byId.get(e.source)), t = visibleOf(state.byId.get(e.target));
      if (s === t) {
        const v = vnodes.get(s);
        if (v && v.kind === "namespace") { v.inside++; v.insideConnections += e.connections || 0; }
        else vedgeAdd(vedges, s, t, e);
        continue;
      }
      vedgeAdd(vedges, s, t, e);
    }
    return { nodes: vnodes, edges: [...vedges.values()] };
  }
  function vedgeAdd(vedges, s, t, e) {
    const id = s + "\u2192" + t;
    let v = vedges.get(id);
    if (!v) { v = { id, source: s, target: t, edges: [], connections: 0, bytes: 0, last_seen: 0, verdict: "allowed", ports: new Set() }; vedges.set(id, v); }
    v.edges.push(e);
    v.connections += e.connections || 0;
    v.bytes += e.bytes || 0;
    v.last_seen = Math.max(v.last_seen, e.last_seen || 0);
    const verdict = verdictOf(e);
    if (WORST[verdict] > WORST[v.verdict]) v.verdict = verdict;
    v.ports.add(e.key);
  }

  // ---- layout ----------------------------------------------------------------------------------
  // Layers: longest path from the sources over an acyclic version of the edges (back edges found by
  // an iterative DFS are ignored). Namespaces keep their members together: each group's columns
  // are its members' layers; groups are themselves placed in columns by the group-level layering.
  function layers(ids, edges) {
    const out = new Map(ids.map((id) => [id, []]));
    const indeg = new Map(ids.map((id) => [id, 0]));
    for (const [s, t] of edges) if (out.has(s) && out.has(t) && s !== t) out.get(s).push(t);
    // drop back edges with an iterative DFS
    const color = new Map(), keep = new Map(ids.map((id) => [id, []]));
    for (const root of ids) {
      if (color.get(root)) continue;
      const stack = [[root, 0]];
      color.set(root, 1);
      while (stack.length) {
        const top = stack[stack.length - 1];
        const succ = out.get(top[0]);
        if (top[1] < succ.length) {
          const nxt = succ[top[1]++];
          const c = color.get(nxt);
          if (c === 1) continue; // back edge
          keep.get(top[0]).push(nxt);
          if (!c) { color.set(nxt, 1); stack.push([nxt, 0]); }
        } else { color.set(top[0], 2); stack.pop(); }
      }
    }
    for (const succ of keep.values()) for (const t of succ) indeg.set(t, indeg.get(t) + 1);
    const layer = new Map(ids.map((id) => [id, 0]));
    const queue = ids.filter((id) => indeg.get(id) === 0);
    for (let i = 0; i < queue.length; i++) {
      const s = queue[i];
      for (const t of keep.get(s)) {
        layer.set(t, Math.max(layer.get(t), layer.get(s) + 1));
        indeg.set(t, indeg.get(t) - 1);
        if (indeg.get(t) === 0) queue.push(t);
      }
    }
    return layer;
  }

  function layout(view) {
    const ids = [...view.nodes.keys()].sort();
    const pairs = view.edges.map((e) => [e.source, e.target]);
    const nodeLayer = layers(ids, pairs);
    // groups and their order
    const groups = new Map();
    for (const id of ids) {
      const v = view.nodes.get(id);
      if (!groups.has(v.group)) groups.set(v.group, { name: v.group, members: [] });
      groups.get(v.group).members.push(v);
    }
    const gnames = [...groups.keys()].sort();
    const gpairs = [];
    for (const e of view.edges) {
      const a = view.nodes.get(e.source).group, b = view.nodes.get(e.target).group;
      if (a !== b) gpairs.push([a, b]);
    }
    const groupLayer = layers(gnames, gpairs);
    const preds = new Map();
    for (const e of view.edges) {
      if (!preds.has(e.target)) preds.set(e.target, []);
      preds.get(e.target).push(e.source);
      if (!preds.has(e.source)) preds.set(e.source, []);
      preds.get(e.source).push(e.target);
    }
    // place members inside each group
    for (const grp of groups.values()) {
      const ls = [...new Set(grp.members.map((m) => nodeLayer.get(m.id)))].sort((a, b) => a - b);
      const n = grp.members.length;
      const maxCols = Math.max(1, Math.ceil(Math.sqrt(n) * 1.2));
      const colOf = new Map(ls.map((l, i) => [l, ls.length > maxCols ? Math.floor((i * maxCols) / ls.length) : i]));
      let cols = [];
      for (const m of grp.members) {
        const c = colOf.get(nodeLayer.get(m.id));
        (cols[c] = cols[c] || []).push(m);
      }
      cols = cols.filter(Boolean);
      // tall columns wrap into several so a namespace stays roughly square
      const maxRows = Math.max(6, Math.ceil(Math.sqrt(n) * 1.3));
      // order each column by the mean row of its members' neighbours in the columns before it
      // (one barycenter sweep: fewer crossings), names breaking ties
      const row = new Map();
      const wrapped = [];
      for (const col of cols) {
        const bary = new Map(col.map((m) => {
          const rows = (preds.get(m.id) || []).filter((p) => row.has(p)).map((p) => row.get(p));
          return [m.id, rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : Infinity];
        }));
        col.sort((a, b) => bary.get(a.id) - bary.get(b.id) || a.label.localeCompare(b.label));
        col.forEach((m, i) => row.set(m.id, i));
        for (let i = 0; i < col.length; i += maxRows) wrapped.push(col.slice(i, i + maxRows));
      }
      grp.cols = wrapped;
      let width = 0, height = 0;
      wrapped.forEach((col, ci) => {
        col.forEach((m, ri) => {
          m.w = m.kind === "namespace" ? NODE_W + 24 : NODE_W;
          m.h = m.kind === "namespace" ? NODE_H + 14 : NODE_H;
          m.rx = PAD + ci * (NODE_W + 24 + COL_GAP);
          m.ry = HEAD + ri * (NODE_H + 14 + ROW_GAP);
          width = Math.max(width, m.rx + m.w + PAD);
          height = Math.max(height, m.ry + m.h + PAD);
        });
      });
      grp.w = Math.max(width, 200);
      grp.h = height;
      grp.layer = groupLayer.get(grp.name);
    }
    // place the group columns left to right
    // many groups: fold their layers into about sqrt(1.2n) columns so the map stays roughly 3:2
    // instead of a long chain (a namespace graph is dense: almost every namespace calls another)
    const glayers = [...new Set([...groups.values()].map((grp) => grp.layer))].sort((a, b) => a - b);
    const maxGcols = Math.max(5, Math.ceil(Math.sqrt(groups.size * 1.2)));
    const gcolOf = new Map(glayers.map((l, i) => [l, glayers.length > maxGcols ? Math.floor((i * maxGcols) / glayers.length) : i]));
    const gcols = [];
    for (const grp of groups.values()) {
      const c = gcolOf.get(grp.layer);
      (gcols[c] = gcols[c] || []).push(grp);
    }
    let x = 0;
    const placed = gcols.filter(Boolean);
    const columnHeights = placed.map((col) => col.reduce((h, grp) => h + grp.h + GROUP_GAP, -GROUP_GAP));
    const tallest = Math.max(0, ...columnHeights);
    placed.forEach((col, ci) => {
      col.sort((a, b) => (a.name === OUTSIDE) - (b.name === OUTSIDE) || b.members.length - a.members.length || a.name.localeCompare(b.name));
      let y = (tallest - columnHeights[ci]) / 2;
      const colW = Math.max(...col.map((grp) => grp.w));
      for (const grp of col) {
        grp.x = x + (colW - grp.w) / 2;
        grp.y = y;
        for (const m of grp.members) { m.x = grp.x + m.rx; m.y = grp.y + m.ry; }
        y += grp.h + GROUP_GAP;
      }
      x += colW + GCOL_GAP;
    });
    return { groups: [...groups.values()], width: Math.max(x - GCOL_GAP, 1), height: Math.max(tallest, 1) };
  }

  // ---- drawing ---------------------------------------------------------------------------------
  function cubicAt(p0, p1, p2, p3, t) {
    const u = 1 - t;
    return u * u * u * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t * t * t * p3;
  }
  function cubic(x1, y1, cx1, cy1, cx2, cy2, x2, y2) {
    return { d: `M${x1},${y1} C${cx1},${cy1} ${cx2},${cy2} ${x2},${y2}`,
      at: (t) => ({ x: cubicAt(x1, cx1, cx2, x2, t), y: cubicAt(y1, cy1, cy2, y2, t) }) };
  }
  function edgePath(s, t) {
    const sy = s.y + s.h / 2, ty = t.y + t.h / 2;
    if (t.x > s.x + s.w / 2) {
      const x1 = s.x + s.w, x2 = t.x, dx = Math.max(30, (x2 - x1) / 2);
      return cubic(x1, sy, x1 + dx, sy, x2 - dx, ty, x2, ty);
    }
    if (t.x + t.w < s.x + s.w / 2) { // backwards: leave on the left, arrive on the right
      const x1 = s.x, x2 = t.x + t.w, dx = Math.max(40, (x1 - x2) / 2);
      return cubic(x1, sy, x1 - dx, sy + 40, x2 + dx, ty + 40, x2, ty);
    }
    const x1 = s.x + s.w, x2 = t.x + t.w, bulge = 40 + Math.abs(ty - sy) / 4; // same column
    return cubic(x1, sy, x1 + bulge, sy, x2 + bulge, ty, x2, ty);
  }
  // Edge labels: each goes at the first point along its edge (middle first, then towards either end)
  // where it overlaps neither a label already placed nor a box; where none is free it is left out
  // (the edge's tooltip and details still say it).
  const LABEL_SPOTS = [0.5, 0.38, 0.62, 0.28, 0.72, 0.2, 0.8];
  function placeLabel(path, text, taken, boxes) {
    const w = text.length * 5.6 + 4, h = 12;
    for (const t of LABEL_SPOTS) {
      const p = path.at(t);
      const r = { x: p.x - w / 2, y: p.y - 4 - h + 2, w, h };
      const hits = (o) => r.x < o.x + o.w && o.x < r.x + r.w && r.y < o.y + o.h && o.y < r.y + r.h;
      if (!taken.some(hits) && !boxes.some(hits)) { taken.push(r); return p; }
    }
    return null;
  }

  function nodeAlerts(id) {
    return state.alerts.filter((a) => [a.source, a.target, a.src, a.dst, a.workload, a.node].includes(id));
  }
  function edgeAlerts(e) {
    return state.alerts.filter((a) => (a.source || a.src) === e.source && (a.target || a.dst) === e.target &&
      (a.port === undefined || a.port === null || Number(a.port) === e.port) && (!a.protocol || a.protocol === e.protocol));
  }

  function fitTitles(layer) {
    for (const g of layer.querySelectorAll(".ns")) {
      const title = g.querySelector(".ns-title"), sub = g.querySelector(".ns-sub");
      const room = (sub.textContent ? sub.getBBox().x - 10 : Number(g.querySelector("rect").getAttribute("x")) + Number(g.querySelector("rect").getAttribute("width")) - 10) - Number(title.getAttribute("x"));
      const full = title.firstChild.textContent;
      let text = full;
      while (text.length > 1 && title.getComputedTextLength() > room) {
        text = text.slice(0, -1);
        title.firstChild.textContent = text.trimEnd() + "…";
      }
    }
  }

  function render() {
    if (!state.graph) return;
    const started = performance.now();
    const view = buildView();
    const lay = layout(view);
    state.view = view;
    const root = $("#map");
    root.replaceChildren();
    const defs = svg("defs");
    for (const [v, color] of [["allowed", "#2e7d32"], ["denied", "#c62828"], ["not-covered", "#8a96a3"], ["alert", "#ef6c00"]]) {
      const m = svg("marker", { id: "arrow-" + v, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9,
        markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" });
      m.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: color }));
      defs.append(m);
    }
    root.append(defs);
    root.classList.toggle("many", view.edges.length > 300);
    const scene = svg("g", { id: "scene" });
    root.append(scene);
    const q = state.search.trim().toLowerCase();
    const matches = new Set();
    if (q) for (const v of view.nodes.values()) if (v.members.some((n) => searchMatches(n, q)) || v.label.toLowerCase().includes(q)) matches.add(v.id);

    // namespace boxes
    const gLayer = svg("g", { class: "groups" });
    for (const grp of lay.groups) {
      if (grp.members.length === 1 && grp.members[0].kind === "namespace") continue; // a closed namespace is its node
      const g = svg("g", { class: "ns", "data-ns": grp.name });
      g.append(svg("rect", { class: "ns-box" + (grp.name === OUTSIDE ? " outside" : ""), x: grp.x, y: grp.y, width: grp.w, height: grp.h, rx: 8 }));
      const title = svg("text", { class: "ns-title", x: grp.x + 12, y: grp.y + 19 });
      const mode = (state.graph.modes || {})[grp.name];
      title.append(document.createTextNode(grp.name === OUTSIDE ? "outside the cluster" : grp.name + (mode ? ` · ${mode} mode` : "")));
      if (grp.name !== OUTSIDE) {
        const tip = svg("title"); tip.textContent = `${title.textContent}: click to close`; title.append(tip);
        title.addEventListener("click", (ev) => { ev.stopPropagation(); state.expanded.delete(grp.name); render(); });
      }
      g.append(title);
      const sub = svg("text", { class: "ns-sub", x: grp.x + grp.w - 10, y: grp.y + 19, "text-anchor": "end" });
      sub.textContent = grp.name === OUTSIDE ? "" : `${grp.members.length} workload${grp.members.length === 1 ? "" : "s"}`;
      g.append(sub);
      gLayer.append(g);
    }
    scene.append(gLayer);
    fitTitles(gLayer);

    // edges
    const eLayer = svg("g", { class: "edges" });
    const withLabels = view.edges.length < LABELS_UP_TO;
    const labelTaken = [], nodeBoxes = [...view.nodes.values()].map((v) => ({ x: v.x, y: v.y - 8, w: v.w, h: v.h + 8 }));
    for (const e of view.edges) {
      const s = view.nodes.get(e.source), t = view.nodes.get(e.target);
      const p = edgePath(s, t);
      const alerted = e.edges.some((x) => edgeAlerts(x).length);
      const g = svg("g", { class: "edge-g", "data-source": e.source, "data-target": e.target, "data-verdict": e.verdict });
      const hit = svg("path", { class: "edge-hit", d: p.d });
      const width = Math.min(5, 1.2 + Math.log10(1 + e.connections) * 0.9);
      const path = svg("path", { class: `edge ${e.verdict}${alerted ? " alert" : ""}`, d: p.d, "stroke-width": width.toFixed(2),
        "marker-end": `url(#arrow-${alerted ? "alert" : e.verdict})` });
      if (state.selected && state.selected.type === "edge" && state.selected.id === e.id) path.classList.add("selected");
      if (q && !(matches.has(e.source) || matches.has(e.target))) g.classList.add("dim");
      const tip = svg("title");
      tip.textContent = `${e.source} → ${e.target}\n${[...e.ports].join(", ")} · ${fmtInt(e.connections)} connections · ${VERDICT_TEXT[e.verdict]}`;
      hit.append(tip);
      g.addEventListener("click", (ev) => { ev.stopPropagation(); select({ type: "edge", id: e.id }); });
      g.append(hit, path);
      const ports = [...e.ports];
      const text = (ports.length > 2 ? `${ports.length} ports` : ports.join(", ")) + ` · ${fmtInt(e.connections)}`;
      const at = withLabels && placeLabel(p, text, labelTaken, nodeBoxes);
      if (at) {
        const label = svg("text", { class: "edge-label", x: at.x, y: at.y - 4, "text-anchor": "middle" });
        label.textContent = text;
        g.append(label);
      }
      eLayer.append(g);
    }
    scene.append(eLayer);

    // nodes
    const nLayer = svg("g", { class: "nodes" });
    for (const v of view.nodes.values()) {
      const blocks = v.members.reduce((n, m) => n + ((state.waf.targets[m.id] || {}).blocked || 0), 0);
      const alerts = v.members.reduce((n, m) => n + nodeAlerts(m.id).length, 0);
      const cls = ["node", "kind-" + v.kind];
      if (blocks) cls.push("waf");
      else if (alerts) cls.push("alert");
      if (matches.has(v.id)) cls.push("match");
      if (q && !matches.has(v.id)) cls.push("dim");
      if (state.selected && state.selected.type === "node" && state.selected.id === v.id) cls.push("selected");
      const g = svg("g", { class: cls.join(" "), "data-id": v.id, "data-kind": v.kind, transform: `translate(${v.x},${v.y})` });
      g.append(svg("rect", { width: v.w, height: v.h, rx: 6 }));
      const name = svg("text", { x: 10, y: v.kind === "namespace" ? 20 : 15 });
      name.textContent = truncate(v.kind === "namespace" ? v.label : (v.node.name || v.label), 24);
      const kindText = svg("text", { class: "kindtext", x: 10, y: v.kind === "namespace" ? 37 : 28 });
      kindText.textContent = v.kind === "namespace"
        ? `${v.members.length} workloads · ${fmtInt(v.inside)} edges inside`
        : v.kind === "workload" ? v.node.workload_kind : v.kind;
      const tip = svg("title"); tip.textContent = v.kind === "namespace" ? `namespace ${v.label}: click to open` : v.id;
      g.append(tip, name, kindText);
      let bx = v.w - 4;
      for (const [count, color, mark] of [[blocks, "#d32f2f", "WAF "], [alerts, "#ef6c00", "! "]]) {
        if (!count) continue;
        const text = mark + count;
        const bw = 10 + text.length * 6;
        bx -= bw;
        const b = svg("g", { class: "badge", transform: `translate(${bx},-8)` });
        b.append(svg("rect", { width: bw, height: 15, rx: 7.5, style: `fill:${color}` }));
        const bt = svg("text", { x: bw / 2, y: 11, "text-anchor": "middle" }); bt.textContent = text;
        b.append(bt);
        g.append(b);
        bx -= 4;
      }
      g.addEventListener("click", (ev) => {
        ev.stopPropagation();
        if (v.kind === "namespace") {
          openNamespace(v.namespace).then(() => {
            state.expanded.add(v.namespace);
            state.zoomTo = v.namespace;
            select({ type: "namespace", id: v.namespace }, true);
            render();
          }).catch((err) => toast(String(err.message || err), true));
        }
        else select({ type: "node", id: v.id });
      });
      nLayer.append(g);
    }
    scene.append(nLayer);

    const fresh = !state.viewBox || state.lastSize !== `${lay.width}x${lay.height}`;
    state.lastSize = `${lay.width}x${lay.height}`;
    state.bounds = { x: -40, y: -40, w: lay.width + 80, h: lay.height + 80 };
    const focusGroup = state.zoomTo && lay.groups.find((grp) => grp.name === state.zoomTo);
    state.zoomTo = null;
    if (focusGroup) zoomToBox(focusGroup);
    else if (fresh) fit(); else applyViewBox();
    const nodes = view.nodes.size, edges = view.edges.length;
    const closed = [...view.nodes.values()].filter((v) => v.kind === "namespace").length;
    $("#status").textContent = `${fmtInt(nodes)} boxes · ${fmtInt(edges)} lines shown` + (closed ? ` · ${closed} namespaces closed` : "") +
      (state.waf.blocked ? ` · ${fmtInt(state.waf.blocked)} WAF blocks` + ((state.waf.top_rules || []).length ? ` (top rule ${state.waf.top_rules[0][0]})` : "") : "") + (state.alerts.length ? ` · ${state.alerts.length} alerts` : "");
    const allOpen = closed === 0, allClosed = ![...view.nodes.values()].some((v) => v.kind === "workload" && v.node.namespace);
    $("#expand-all").classList.toggle("active", allOpen);
    $("#collapse-all").classList.toggle("active", !allOpen && allClosed);
    updateExportLink();
    focusEdges();
    renderDetails();
    // layout time includes the browser's own layout of the SVG
    root.getBBox();
    window.netguard.layoutMs = performance.now() - started;
    window.netguard.ready = true;
    document.body.dataset.ready = "1";
  }

  // ---- pan and zoom --------------------------------------------------------------------------------
  function applyViewBox() {
    const v = state.viewBox;
    $("#map").setAttribute("viewBox", `${v.x} ${v.y} ${v.w} ${v.h}`);
  }
  function fit() {
    const box = $("#map").getBoundingClientRect();
    const b = state.bounds;
    const aspect = (box.width || 800) / (box.height || 600);
    let w = b.w, h = b.h;
    if (w / h < aspect) w = h * aspect; else h = w / aspect;
    const minW = (box.width || 800) / 1.6; // do not blow small graphs up past 160%
    if (w < minW) { h = h * (minW / w); w = minW; }
    state.viewBox = { x: b.x - (w - b.w) / 2, y: b.y - (h - b.h) / 2, w, h };
    applyViewBox();
  }
  function zoomToBox(box) {
    // an opened namespace fills the view (with its neighbours at the edges), never past 130%
    const r = $("#map").getBoundingClientRect();
    const aspect = (r.width || 800) / (r.height || 600);
    let w = Math.max(box.w + 240, (r.width || 800) / 1.3), h = Math.max(box.h + 160, w / aspect);
    w = Math.max(w, h * aspect);
    h = w / aspect;
    state.viewBox = { x: box.x + box.w / 2 - w / 2, y: box.y + box.h / 2 - h / 2, w, h };
    applyViewBox();
  }
  function zoom(factor, cx, cy) {
    const v = state.viewBox;
    if (cx === undefined) { cx = v.x + v.w / 2; cy = v.y + v.h / 2; }
    const w = Math.min(Math.max(v.w * factor, 80), state.bounds.w * 20);
    const h = w * (v.h / v.w);
    state.viewBox = { x: cx - (cx - v.x) * (w / v.w), y: cy - (cy - v.y) * (h / v.h), w, h };
    applyViewBox();
  }
  function installPanZoom() {
    const root = $("#map");
    let drag = null;
    root.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const r = root.getBoundingClientRect(), v = state.viewBox;
      const cx = v.x + ((ev.clientX - r.left) / r.width) * v.w, cy = v.y + ((ev.clientY - r.top) / r.height) * v.h;
      zoom(ev.deltaY > 0 ? 1.15 : 1 / 1.15, cx, cy);
    }, { passive: false });
    root.addEventListener("mousedown", (ev) => { drag = { x: ev.clientX, y: ev.clientY, v: Object.assign({}, state.viewBox), moved: false }; });
    window.addEventListener("mousemove", (ev) => {
      if (!drag) return;
      const r = root.getBoundingClientRect();
      const dx = ((ev.clientX - drag.x) / r.width) * drag.v.w, dy = ((ev.clientY - drag.y) / r.height) * drag.v.h;
      if (Math.abs(ev.clientX - drag.x) + Math.abs(ev.clientY - drag.y) > 3) { drag.moved = true; root.classList.add("panning"); }
      state.viewBox = Object.assign({}, drag.v, { x: drag.v.x - dx, y: drag.v.y - dy });
      applyViewBox();
    });
    window.addEventListener("mouseup", () => { if (drag) root.classList.remove("panning"); setTimeout(() => { drag = null; }, 0); });
    root.addEventListener("click", () => { if (drag && drag.moved) return; if (state.selected) select(null); });
    $("#zoom-in").onclick = () => zoom(1 / 1.3);
    $("#zoom-out").onclick = () => zoom(1.3);
    $("#zoom-fit").onclick = () => fit();
  }

  // ---- details panel ----------------------------------------------------------------------------
  function focusEdges() {
    // a selected box: its own lines stand out, the others fade
    const sel = state.selected, root = $("#map");
    root.querySelectorAll(".edge-g.hl").forEach((g) => g.classList.remove("hl"));
    const on = sel && sel.type === "node";
    root.classList.toggle("focus", !!on);
    if (!on) return;
    root.querySelectorAll(".edge-g").forEach((g) => {
      if (g.dataset.source === sel.id || g.dataset.target === sel.id) g.classList.add("hl");
    });
  }
  function select(sel, quiet) {
    state.selected = sel;
    if (quiet) return;
    focusEdges();
    document.querySelectorAll(".node.selected, .edge.selected").forEach((n) => n.classList.remove("selected"));
    if (sel && sel.type === "node") { const n = document.querySelector(`.node[data-id="${CSS.escape(sel.id)}"]`); if (n) n.classList.add("selected"); }
    if (sel && sel.type === "edge") {
      const e = state.view.edges.find((x) => x.id === sel.id);
      const g = e && document.querySelector(`.edge-g[data-source="${CSS.escape(e.source)}"][data-target="${CSS.escape(e.target)}"] .edge`);
      if (g) g.classList.add("selected");
    }
    renderDetails();
  }
  function policyFor(node) {
    if (!state.policies || !node || node.kind !== "workload" || node.placeholder) return null;
    const key = workloadKey(node);
    const found = state.policies.policies.find((p) => p.workload === key) || state.single.get(key);
    if (found === undefined && !(state.review.loaded.get(node.namespace) || {}).done) { // not loaded yet: on its own
      state.single.set(key, null);
      api(`/api/v1/workloads/${key.split("/").map(encodeURIComponent).join("/")}/policy`)
        .then((p) => { state.single.set(key, p); if (state.selected && state.selected.id === node.id) renderDetails(); })
        .catch(() => {});
    }
    return found || null;
  }
  function kv(rows) {
    return el("table", { class: "kv" }, rows.filter((r) => r[1] !== undefined && r[1] !== null && r[1] !== "").map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
  }
  function whyFor(edge) {
    // the rule lines of the generated policies that name this edge's peer and port
    const out = [];
    const s = state.byId.get(edge.source), t = state.byId.get(edge.target);
    const pick = (policy, lists, direction, peer) => {
      if (!policy) return;
      lists.forEach((lines, i) => {
        for (const line of lines) {
          if (line.includes(edge.key) && (!peer || line.includes(peer))) out.push({ policy: policy.name, rule: `${direction}[${i}]`, line });
        }
      });
    };
    const peerName = (n) => (n.kind === "workload" ? `${n.namespace}/${n.name}` : n.name);
    pick(policyFor(t), (policyFor(t) || {}).ingress_why || [], "ingress", peerName(s));
    pick(policyFor(s), (policyFor(s) || {}).egress_why || [], "egress", peerName(t));
    return out;
  }
  function fill(box, ...parts) {
    box.replaceChildren(el("button", { class: "close", title: "close", onclick: (ev) => { ev.stopPropagation(); select(null); } }, "×"), ...parts);
  }
  function renderDetails() {
    const box = $("#details");
    const sel = state.selected;
    const wasHidden = box.classList.contains("hidden");
    box.classList.toggle("hidden", !sel);
    if (wasHidden !== !sel && state.bounds) fit(); // the map got narrower or wider
    if (!sel || !state.view) { box.replaceChildren(); return; }
    if (sel.type === "edge") {
      const e = state.view.edges.find((x) => x.id === sel.id);
      if (!e) { fill(box, el("div", { class: "empty" }, "That edge is filtered out.")); return; }
      const parts = [el("h2", { "data-testid": "details-title" }, `${e.source} → ${e.target}`),
        el("div", { class: "sub" }, `${e.edges.length} edge${e.edges.length === 1 ? "" : "s"} · ${fmtInt(e.connections)} connections · ${fmtBytes(e.bytes)} · last seen ${fmtTime(e.last_seen)}`)];
      for (const x of e.edges.slice(0, 200)) {
        parts.push(el("h4", {}, `${x.source} → ${x.target} on ${x.key}`));
        parts.push(el("table", { class: "kv edge-detail", "data-key": x.key }, [
          ["port", `${x.port}/${x.protocol}` + (x.port_name ? ` (${x.port_name})` : "")],
          ["via Service", x.via_service || "—"], ["connections", fmtInt(x.connections)], ["bytes", `${fmtBytes(x.bytes)} (${fmtInt(x.bytes)})`],
          ["packets", fmtInt(x.packets)], ["first seen", fmtTime(x.first_seen)], ["last seen", `${fmtTime(x.last_seen)} ${ago(x.last_seen)}`],
          ...(x.baseline === undefined ? [] : [["learned baseline", x.baseline ? "yes" : "no: seen after learning"]]),
        ].map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))).concat([
          el("tr", {}, el("th", {}, "current"), el("td", {}, verdictBadge(x.verdict))),
          el("tr", {}, el("th", {}, "candidate"), el("td", {}, verdictBadge(x.candidate_verdict))),
        ])));
        const why = whyFor(x);
        if (why.length) for (const w of why) parts.push(el("div", { class: "why" }, `${w.policy} ${w.rule}: ${w.line}`));
        for (const a of edgeAlerts(x)) parts.push(el("div", { class: "warn" }, alertText(a)));
      }
      if (e.edges.length > 200) parts.push(el("div", { class: "sub" }, `… and ${e.edges.length - 200} more`));
      fill(box, ...parts);
      return;
    }
    if (sel.type === "namespace") {
      const members = state.graph.nodes.filter((n) => n.namespace === sel.id);
      fill(box, el("h2", {}, `namespace ${sel.id}`), el("div", { class: "sub" }, `${members.length} workloads`),
        el("div", {}, members.slice(0, 300).map((n) => el("div", {}, el("a", { href: "#", onclick: (ev) => { ev.preventDefault(); select({ type: "node", id: n.id }); } }, n.name)))));
      return;
    }
    const node = state.byId.get(sel.id);
    if (!node) { fill(box, el("div", { class: "empty" }, "Not in the graph.")); return; }
    const parts = [el("h2", { "data-testid": "details-title" }, node.kind === "workload" ? node.name : node.label),
      el("div", { class: "sub" }, node.kind === "workload" ? `${node.workload_kind} in namespace ${node.namespace}` : `${node.kind} (outside the pods)`)];
    if (node.labels && Object.keys(node.labels).length) parts.push(el("h4", {}, "labels"), el("div", {}, Object.entries(node.labels).map(([k, v]) => el("span", { class: "tag" }, `${k}=${v}`))));
    if (node.pods) parts.push(el("h4", {}, `pods (${node.pods.length})`), el("table", { class: "grid" }, el("tr", {}, el("th", {}, "pod"), el("th", {}, "IP"), el("th", {}, "node")),
      node.pods.slice(0, 100).map((p) => el("tr", {}, el("td", {}, p.name), el("td", {}, p.ip), el("td", {}, p.node || "")))));
    if (node.ports && node.ports.length) parts.push(el("h4", {}, "container ports"), el("div", {}, node.ports.map((p) => el("span", { class: "tag" }, p))));
    const waf = state.waf.targets[node.id];
    if (waf) {
      parts.push(el("h4", {}, `WAF blocks (${waf.blocked})`),
        el("div", { class: "blocked" }, Object.entries(waf.categories).map(([c, n]) => `${c}: ${n}`).join(" · ") + ` — last ${fmtTime(waf.last)}`),
        el("div", { class: "sub", "data-testid": "waf-rules" }, "top rules: " + (waf.rules || []).map(([r, n]) => `${r} ×${n}`).join(" · ")),
        el("table", { class: "grid" }, el("tr", {}, el("th", {}, "time"), el("th", {}, "client"), el("th", {}, "path"), el("th", {}, "rules")),
          waf.recent.map((r) => el("tr", {}, el("td", {}, fmtTime(Number(r.time)) === "—" ? String(r.time) : fmtTime(Number(r.time))), el("td", {}, r.client || ""), el("td", {}, truncate(String(r.path || ""), 60)), el("td", {}, (r.rule_ids || []).join(" "))))));
    }
    for (const a of nodeAlerts(node.id)) parts.push(el("div", { class: "warn" }, alertText(a)));
    const inEdges = state.graph.edges.filter((e) => e.target === node.id), outEdges = state.graph.edges.filter((e) => e.source === node.id);
    const edgeTable = (title, list, peer) => {
      if (!list.length) return [];
      return [el("h4", {}, `${title} (${list.length})`), el("table", { class: "grid" },
        el("tr", {}, el("th", {}, peer), el("th", {}, "port"), el("th", {}, "conns"), el("th", {}, "verdict")),
        list.slice(0, 200).map((e) => el("tr", {}, el("td", {}, peer === "from" ? e.source : e.target), el("td", {}, e.key), el("td", {}, fmtInt(e.connections)), el("td", {}, verdictBadge(verdictOf(e))))))];
    };
    parts.push(...edgeTable("incoming", inEdges, "from"), ...edgeTable("outgoing", outEdges, "to"));
    const p = policyFor(node);
    if (p) {
      parts.push(el("h4", {}, "generated policy"), el("div", {}, el("span", { class: "status-badge " + p.status }, p.status), " ", p.name, " ",
        el("a", { href: "#", onclick: (ev) => { ev.preventDefault(); showView("review", p.workload); } }, "review")));
      parts.push(...rulesWhy(p));
      for (const n of p.notes || []) parts.push(el("div", { class: "warn" }, n));
    } else if (node.kind === "workload") {
      parts.push(el("h4", {}, "generated policy"), el("div", { class: "sub" }, "none for this workload"));
    }
    fill(box, ...parts);
  }
  const REASONS = { "new-edge": "a connection outside the learned baseline", denied: "a connection the approved policies deny" };
  function alertText(a) {
    // the controller's alerts: {source, target, port, protocol, namespace, mode, reasons, first_seen, last_seen, count}
    const reasons = Array.isArray(a.reasons) ? a.reasons.map((r) => REASONS[r] || r).join(" and ") : "";
    const what = a.message || reasons || a.reason || a.kind || a.type || "alert";
    const where = [a.source || a.src, a.target || a.dst].filter(Boolean).join(" → ");
    const when = a.last_seen || a.time;
    return `Alert: ${what}${where ? " — " + where : ""}${a.port ? " on " + a.port + (a.protocol ? "/" + a.protocol : "") : ""}` +
      `${a.mode ? " (" + a.mode + " mode)" : ""}${a.count > 1 ? `, ${a.count} times` : ""}${when ? ", last " + fmtTime(when) : ""}`;
  }
  function rulesWhy(p) {
    const out = [];
    const spec = (p.policy && p.policy.spec) || {};
    for (const [dir, why] of [["ingress", p.ingress_why], ["egress", p.egress_why]]) {
      (why || []).forEach((lines, i) => {
        const rule = (spec[dir] || [])[i] || {};
        const ports = (rule.ports || []).map((x) => `${x.port}/${x.protocol || "TCP"}`).join(", ");
        out.push(el("div", { class: "rule" }, el("div", { class: "rule-title" }, `${dir}[${i}]${ports ? " · " + ports : ""}`),
          lines.map((line) => el("div", { class: "why" }, line))));
      });
    }
    if (!out.length) out.push(el("div", { class: "sub" }, "no rules: this workload gets no traffic in that direction"));
    return out;
  }

  // ---- review view ----------------------------------------------------------------------------
  function diffBlock(text) {
    const pre = el("pre", { class: "code diff" });
    for (const line of (text || "").split("\n")) {
      const cls = line.startsWith("+++") || line.startsWith("---") ? "" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : line.startsWith("@@") ? "hunk" : "";
      pre.append(cls ? el("span", { class: cls }, line) : line + "\n");
    }
    return pre;
  }
  function openCard(body, only) {
    if (body.fill) body.fill();
    if (only) body.classList.remove("hidden");
    else body.classList.toggle("hidden");
  }
  function renderReview(focus) {
    if (!state.policies) return;
    const policies = state.policies.policies;
    const counts = { pending: 0, approved: 0, rejected: 0 };
    for (const p of policies) counts[p.status] = (counts[p.status] || 0) + 1;
    const impact = state.impact || {};
    const cur = impact.current || { denied: [], edges: 0 }, cand = impact.candidate || { denied: [], edges: 0 };
    const changes = new Map(((state.diff || {}).changes || []).map((c) => [c.ref, c]));
    const head = $("#review-head");
    head.replaceChildren(
      el("div", { class: "card stat" }, el("div", { class: "n", id: "count-approved" }, String(counts.approved)), el("div", { class: "l" }, "approved")),
      el("div", { class: "card stat" }, el("div", { class: "n", id: "count-pending" }, String(counts.pending)), el("div", { class: "l" }, "pending")),
      el("div", { class: "card stat" }, el("div", { class: "n", id: "count-rejected" }, String(counts.rejected)), el("div", { class: "l" }, "rejected")),
      el("div", { class: "card stat " + (cand.denied.length ? "bad" : "good") }, el("div", { class: "n", id: "impact-denied" }, String(cand.denied.length)),
        el("div", { class: "l" }, `of ${fmtInt(cand.edges)} observed edges would be denied by the candidate policies (current: ${cur.denied.length})`)),
      el("div", { class: "card review-actions" },
        el("a", { class: "button", id: "download-approved", href: "/ui/policies.zip?status=approved", download: true }, `Download approved (${counts.approved}) as YAML zip`),
        el("a", { class: "button ghost", id: "download-all", href: "/ui/policies.zip?status=all", download: true }, `Download all (${policies.length})`)),
    );
    if (cand.denied.length) {
      head.append(el("div", { class: "card", style: "flex-basis:100%" }, el("h4", {}, "would be denied"),
        el("table", { class: "grid" }, cand.denied.slice(0, 100).map((d) => el("tr", {}, el("td", {}, `${d.source} → ${d.target}`), el("td", {}, `${d.port}/${d.protocol}`),
          el("td", {}, fmtInt(d.connections)), el("td", {}, (d.reasons || []).join("; ")))))));
    }
    if (cur.denied.length) {
      head.append(el("div", { class: "card", style: "flex-basis:100%" }, el("h4", {}, "denied by the current policies (observed traffic the cluster blocks today)"),
        el("table", { class: "grid", id: "current-denied" }, cur.denied.slice(0, 100).map((d) => el("tr", {}, el("td", {}, `${d.source} → ${d.target}`), el("td", {}, `${d.port}/${d.protocol}`),
          el("td", {}, fmtInt(d.connections)), el("td", {}, (d.reasons || []).join("; ")))))));
    }
    const clusterOnly = [...changes.values()].filter((c) => c.status === "cluster-only");
    if (clusterOnly.length) {
      head.append(el("div", { class: "card", style: "flex-basis:100%" },
        el("h4", {}, `in the cluster, not generated (kept beside the generated ones): ${clusterOnly.length}`),
        el("div", {}, clusterOnly.map((c) => el("span", { class: "tag" }, c.ref)))));
    }
    for (const w of state.policies.warnings || []) head.append(el("div", { class: "warn", style: "flex-basis:100%" }, w));
    head.append(tokenCard());
    if (state.info.mode === "controller") { head.append(applyCard()); renderApplyResult(); }
    head.append(auditCard());
    const list = $("#review-list");
    head.append(el("div", { class: "card review-filter", style: "flex-basis:100%" }, el("span", { class: "sub" }, "show "),
      el("div", { class: "segmented", id: "status-filter" }, ["all", "pending", "approved", "rejected"].map((st) =>
        el("button", { "data-status": st, class: state.reviewStatus === st ? "active" : "",
          onclick: () => { state.reviewStatus = st; renderReview(); } }, st === "all" ? `all (${policies.length}${state.policies.total > policies.length ? " loaded of " + fmtInt(state.policies.total) : ""})` : `${st} (${counts[st] || 0})`)))));
    const matching = policies.filter((p) => !state.hiddenNs.has(p.namespace) && (state.reviewStatus === "all" || p.status === state.reviewStatus));
    const shown = matching.slice(0, state.reviewLimit);
    list.replaceChildren(...shown.map((p) => {
      const change = changes.get(`${p.namespace}/${p.name}`);
      // the body (rules, diff, YAML) is built when the card is first opened: thousands of cards stay light
      const body = el("div", { class: "body hidden" });
      body.fill = () => {
        if (body.childElementCount) return;
        body.append(
          el("div", {}, el("h5", {}, "rules and the flows they came from"), rulesWhy(p), p.notes && p.notes.length ? p.notes.map((n) => el("div", { class: "warn" }, n)) : null,
            el("h5", {}, `diff against the cluster (${change ? change.status : "—"})`), change && change.diff ? diffBlock(change.diff) : el("div", { class: "sub" }, "no difference")),
          el("div", {}, el("h5", {}, p.path), el("pre", { class: "code" }, p.yaml)));
        if (p.changed_since_decision && p.decided_diff) {
          body.prepend(el("div", { class: "changed-diff", style: "grid-column:1/-1" },
            el("h5", {}, `changed since it was ${p.decision.decision} by ${p.decision.by || "?"} (${fmtTime(p.decision.at)}): the diff against that text`),
            diffBlock(p.decided_diff)));
        }
      };
      const decide = (decision) => async (ev) => {
        ev.stopPropagation();
        try {
          await api("/api/v1/policies/approve", writeOptions("POST", { workload: p.workload, decision, digest: p.digest }));
          toast(`${p.workload}: ${decision}`);
          await loadReview();
          render();
        } catch (err) {
          toast(String(err.message || err), true);
          if (String(err.message).includes(" 409 ")) await loadReview(); // changed meanwhile: show the new text
        }
      };
      return el("article", { class: "policy", "data-workload": p.workload, "data-status": p.status, "data-changed": p.changed_since_decision ? "1" : null, "data-digest": p.digest || null, id: "policy-" + p.workload.replace(/[^a-zA-Z0-9_-]/g, "_") },
        el("header", { onclick: (ev) => { openCard(ev.currentTarget.nextElementSibling); setHash(`#/review/${p.namespace}/${p.workload.split("/")[2]}`); } },
          el("span", { class: "status-badge " + p.status }, p.status),
          el("span", { class: "name" }, `${p.namespace}/${p.workload.split("/")[2]}`),
          el("span", { class: "meta" }, `${p.kind} · ${fmtInt(p.connections)} connections · ${(p.ingress_why || []).length} ingress, ${(p.egress_why || []).length} egress rules · ${change ? change.status : ""}`),
          p.changed_since_decision ? el("span", { class: "status-badge changed", title: "the text changed since the decision: review it again" }, `changed since ${p.decision.decision}`) : null,
          p.decision && !p.changed_since_decision && p.status !== "pending" ? el("span", { class: "meta who" }, `by ${p.decision.by || "?"} · ${(p.digest || "").slice(7, 19)}`) : null,
          el("span", { class: "spacer" }),
          el("span", { class: "decide" },
            el("button", { class: "approve" + (p.status === "approved" ? " on" : ""), onclick: decide("approved") }, "Approve"),
            el("button", { class: "reject" + (p.status === "rejected" ? " on" : ""), onclick: decide("rejected") }, "Reject"),
            el("button", { class: "reset", onclick: decide("pending"), title: "back to pending" }, "↺"))),
        body);
    }));
    if (matching.length > shown.length || state.policies.more) {
      const more = async () => {
        state.reviewLimit += 500;
        await loadMore(Math.max(0, state.reviewLimit - loadedCount())).catch((err) => toast(String(err.message || err), true));
        renderReview();
      };
      const left = Math.max(matching.length - shown.length, state.policies.total - policies.length);
      list.append(el("button", { class: "button ghost", id: "review-more", onclick: more },
        `show ${Math.min(500, left)} more of ${fmtInt(left)} (or pick namespaces on the left)`));
    }
    if (!shown.length) list.append(el("div", { class: "card" }, "No generated policies" + (state.hiddenNs.size ? " in the namespaces shown." : ".")));
    if (focus) {
      const card = document.querySelector(`.policy[data-workload="${CSS.escape(focus)}"]`);
      if (card) { openCard(card.querySelector(".body"), true); card.scrollIntoView({ block: "start" }); }
    }
    const pending = counts.pending;
    $("#pending-count").textContent = pending ? String(pending) : "";
  }

  // ---- views, exports, wiring ---------------------------------------------------------------------
  // Deep links: #/map, #/review, #/review/<namespace>/<workload> (that policy opened)
  function parseHash() {
    const parts = decodeURIComponent(location.hash.replace(/^#\/?/, "")).split("/").filter(Boolean);
    return { view: parts[0] === "review" ? "review" : "map", ns: parts[1] || "", name: parts[2] || "" };
  }
  function setHash(hash) {
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }
  function policyKey(ns, name) {
    const p = ((state.policies || {}).policies || []).find((x) => x.namespace === ns && x.workload.split("/")[2] === name);
    return p ? p.workload : null;
  }
  async function route() {
    const want = parseHash();
    if (want.view === "review" && want.ns && state.policies && !policyKey(want.ns, want.name)) {
      await loadNamespace(want.ns).catch(() => {});
      assembleReview();
    }
    if (want.view === "review" && want.ns && state.policies && !policyKey(want.ns, want.name)) toast(`no generated policy for ${want.ns}/${want.name}`, true);
    showView(want.view, want.ns ? policyKey(want.ns, want.name) : null, true);
  }

  function showView(name, focus, routed) {
    if (!routed) setHash("#/" + name);
    for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.view === name);
    $("#map-view").classList.toggle("hidden", name !== "map");
    $("#review-view").classList.toggle("hidden", name !== "review");
    $("#filters").querySelectorAll("section").forEach((s, i) => { if (i !== 2) s.classList.toggle("hidden", name === "review"); });
    if (name === "review") renderReview(focus);
    else render();
  }
  function updateExportLink() {
    const fmt = $("#export-format").value;
    const link = $("#export-link");
    link.href = `/ui/export.${fmt}?verdict=${state.mode}`;
    link.setAttribute("download", `netguard-graph.${fmt}`);
  }
  // The namespaces shown changed: the review loads the policies of those newly shown, up to its limit.
  function reviewShown() {
    renderReview();
    if (!state.review) return;
    const shownCount = state.policies.policies.filter((p) => !state.hiddenNs.has(p.namespace)).length;
    if (shownCount < state.reviewLimit && state.policies.more) loadMore(state.reviewLimit - shownCount).then(renderReview).catch(() => {});
  }
  function debounce(fn, ms) { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; }

  function wire() {
    document.querySelectorAll(".tab").forEach((b) => { b.onclick = () => showView(b.dataset.view); });
    document.querySelectorAll("#verdict-mode button").forEach((b) => {
      b.onclick = () => {
        state.mode = b.dataset.mode;
        document.querySelectorAll("#verdict-mode button").forEach((x) => x.classList.toggle("active", x === b));
        render();
      };
    });
    $("#search").addEventListener("input", debounce((e) => { state.search = e.target.value; render(); }, 150));
    $("#search").addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      const q = state.search.trim().toLowerCase();
      const hit = state.graph.nodes.find((n) => searchMatches(n, q));
      if (hit) {
        if (hit.namespace && !state.expanded.has(hit.namespace)) state.expanded.add(hit.namespace);
        state.hiddenNs.delete(groupOf(hit));
        state.selected = { type: "node", id: hit.id };
        render();
      }
    });
    $("#label-filter").addEventListener("input", debounce((e) => { state.label = e.target.value; render(); }, 200));
    $("#port-filter").addEventListener("input", debounce((e) => { state.port = e.target.value; render(); }, 200));
    $("#ns-all").onclick = () => { state.hiddenNs.clear(); buildFilterLists(); render(); reviewShown(); };
    $("#ns-none").onclick = () => { for (const n of state.graph.nodes) state.hiddenNs.add(groupOf(n)); buildFilterLists(); render(); renderReview(); };
    $("#ns-list").addEventListener("change", () => reviewShown());
    $("#expand-all").onclick = () => { state.expanded = new Set(state.graph.nodes.map(groupOf)); state.viewBox = null; render(); };
    $("#collapse-all").onclick = () => { state.expanded = new Set([OUTSIDE]); state.viewBox = null; render(); };
    $("#export-format").onchange = updateExportLink;
    window.addEventListener("resize", debounce(() => fit(), 150));
    window.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && state.selected && !["INPUT", "SELECT"].includes(document.activeElement.tagName)) select(null);
      if (e.key === "/" && document.activeElement === document.body) { e.preventDefault(); $("#search").focus(); }
    });
    installPanZoom();
  }

  document.addEventListener("DOMContentLoaded", () => {
    wire();
    window.addEventListener("hashchange", route);
    listen();
    if (parseHash().view === "review") showView("review", null, true);
    loadAll().catch((err) => {
      $("#status").textContent = "could not load the graph: " + (err.message || err);
      toast(String(err.message || err), true);
      console.error(err);
    });
  });
})();
