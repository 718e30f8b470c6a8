// The vwh inspector page. Everything from a captured request is put in the page as
// text (text nodes, textContent, attributes), never parsed as markup.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  // The run's secret comes in the printed address; the tab keeps it (sessionStorage is
  // this origin's, port included, unlike a cookie) and the address bar drops it.
  const SECRET_KEY = "vwh-inspector-secret";
  if (params.has("token")) {
    sessionStorage.setItem(SECRET_KEY, params.get("token"));
    params.delete("token");
    history.replaceState(null, "", location.pathname + (params.size ? `?${params}` : ""));
  }
  const SECRET = sessionStorage.getItem(SECRET_KEY) || "";
  const withSecret = (path) => `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(SECRET)}`;
  const MAX_ROWS = Math.min(5000, Math.max(5, parseInt(params.get("rows"), 10) || 500));
  const PAGE = Math.min(100, MAX_ROWS);
  const NEXT_WORDS = { done: "done", dropped: "drop it (never resent)", resend: "resend it" };

  const state = {
    info: null, rows: [], trs: new Map(), q: "", outcome: "", hasOlder: false,
    paused: false, selected: null, open: null,
  };
  let generation = 0;
  let detailGeneration = 0;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function api(path, options) {
    const opts = Object.assign({ credentials: "omit" }, options);
    opts.headers = Object.assign({ Authorization: `Bearer ${SECRET}` }, opts.headers || {});
    const res = await fetch(path, opts);
    let data = null;
    try { data = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) throw new Error((data && data.error) || `HTTP ${res.status}`);
    return data;
  }

  function listUrl(extra) {
    const p = new URLSearchParams();
    if (state.q) p.set("q", state.q);
    if (state.outcome) p.set("outcome", state.outcome);
    for (const [key, value] of Object.entries(extra)) p.set(key, String(value));
    return `/api/requests?${p}`;
  }

  // ---- formatting -------------------------------------------------------------
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  function clock(epoch) {
    const d = new Date(epoch * 1000);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }
  function when(epoch) {
    const d = new Date(epoch * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(epoch)}`;
  }
  function size(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  }
  const ms = (v) => (v === null || v === undefined ? "" : v < 10 ? v.toFixed(1) : v.toFixed(0));
  function since(seconds) {
    if (seconds < 60) return `+${seconds.toFixed(1)}s`;
    if (seconds < 3600) return `+${(seconds / 60).toFixed(1)}m`;
    return `+${(seconds / 3600).toFixed(1)}h`;
  }
  const target = (r) => r.path + (r.query ? `?${r.query}` : "");
  const statusClass = (s) => (s ? `s${String(s)[0]}` : "s5");
  function resendText(r) {
    if (!r.attempt || r.attempt < 2) return "";
    return `#${r.attempt} ${since(r.received_at - (r.first_seen_at || r.received_at))}`;
  }
  function handlerText(r) {
    if (!r.forward) return r.reaction ? "not sent" : "";
    if (r.forward.status !== null) return `${r.forward.status} ${ms(r.forward.latency_ms)} ms`;
    return r.forward.error || "no answer";
  }

  // ---- the list -----------------------------------------------------------------
  function columns() {
    const cols = [
      ["time", "time"], ["id", "#"], ["method", ""], ["path", "request"], ["token", "token"],
      ["ids", "ids"], ["size", "size"], ["status", "status"], ["ms", "ms"], ["resend", "resend"],
    ];
    if (state.info.forwarding) cols.push(["handler", "handler"], ["next", "next"]);
    $("columns").replaceChildren(...cols.map(([key, label]) => el("th", { class: `c-${key}` }, label)));
  }

  function makeRow(r) {
    const ids = Object.values(r.ids || {}).join("  ");
    const cells = [
      el("td", { class: "c-time" }, clock(r.received_at)),
      el("td", { class: "c-id" }, r.id),
      el("td", { class: "c-method" }, r.method),
      el("td", { class: "c-path", title: target(r) }, target(r)),
      el("td", { class: `c-token v-${r.verdict.replace(/\W/g, "")}` }, r.verdict),
      r.error
        ? el("td", { class: "c-ids rej", title: r.error }, r.error)
        : el("td", { class: "c-ids", title: ids }, ids),
      el("td", { class: "c-size" }, size(r.body_size)),
      el("td", { class: `c-status ${statusClass(r.status)}` }, r.status),
      el("td", { class: "c-ms" }, ms(r.latency_ms)),
      el("td", { class: "c-resend resend" }, resendText(r)),
    ];
    if (state.info.forwarding) {
      const fwd = r.forward;
      const cls = fwd && fwd.status !== null ? statusClass(fwd.status) : fwd ? "s5" : "muted";
      cells.push(el("td", { class: `c-handler ${cls}`, title: handlerText(r) }, handlerText(r)));
      cells.push(el("td", { class: `c-next next-${r.reaction || ""}` }, r.reaction || ""));
    }
    const tr = el("tr", { "data-id": r.id }, cells);
    tr.addEventListener("click", () => openDetail(r.id));
    state.trs.set(r.id, tr);
    return tr;
  }

  function render() {
    const keep = new Set(state.rows.map((r) => r.id));
    for (const id of [...state.trs.keys()]) if (!keep.has(id)) state.trs.delete(id);
    $("rows").replaceChildren(...state.rows.map((r) => state.trs.get(r.id) || makeRow(r)));
    $("load-older").hidden = !state.hasOlder;
    $("newer").hidden = !state.paused;
    $("empty").hidden = state.rows.length > 0;
    $("empty").textContent = state.q || state.outcome ? "Nothing matches the filter." : state.emptyText;
    $("counts").textContent = `${state.rows.length} shown${state.hasOlder ? ", more older" : ""}`;
    mark();
  }

  function mark() {
    for (const [id, tr] of state.trs) {
      tr.classList.toggle("sel", id === state.selected);
      tr.classList.toggle("open", id === state.open);
    }
  }

  function showError(error) {
    $("error").hidden = !error;
    $("error").textContent = error ? String(error.message || error) : "";
  }

  async function reload() {
    const gen = ++generation;
    try {
      const data = await api(listUrl({ limit: PAGE }));
      if (gen !== generation) return;
      state.rows = data.requests;
      state.hasOlder = data.has_more;
      state.paused = false;
      showError(null);
      render();
    } catch (error) { showError(error); }
  }

  async function catchUp() {
    if (state.paused) return;
    if (!state.rows.length) return reload();
    const gen = generation;
    const newest = state.rows[0].id;
    const data = await api(listUrl({ after_id: newest, limit: MAX_ROWS }));
    if (gen !== generation || state.paused || !data.requests.length) return;
    if (!state.rows.length || state.rows[0].id !== newest) return;
    if (data.has_more) {
      state.rows = data.requests; // more arrived than the list holds: the newest page
      state.hasOlder = true;
    } else {
      state.rows = data.requests.concat(state.rows);
      if (state.rows.length > MAX_ROWS) {
        state.rows.length = MAX_ROWS;
        state.hasOlder = true;
      }
    }
    render();
  }

  let catchTimer = null, catching = false, again = false;
  function scheduleCatchUp() {
    if (catchTimer !== null) return;
    catchTimer = setTimeout(async () => {
      catchTimer = null;
      if (catching) { again = true; return; }
      catching = true;
      try { await catchUp(); } catch (error) { showError(error); } finally {
        catching = false;
        if (again) { again = false; scheduleCatchUp(); }
      }
    }, 100);
  }

  async function loadOlder() {
    if (!state.rows.length) return;
    const gen = generation;
    const oldest = state.rows[state.rows.length - 1].id;
    try {
      const data = await api(listUrl({ before_id: oldest, limit: PAGE }));
      if (gen !== generation) return;
      state.rows = state.rows.concat(data.requests);
      state.hasOlder = data.has_more;
      if (state.rows.length > MAX_ROWS) { // bounded: drop the newest, stop following
        state.rows = state.rows.slice(state.rows.length - MAX_ROWS);
        state.paused = true;
      }
      render();
    } catch (error) { showError(error); }
  }

  // ---- selection and keyboard -------------------------------------------------
  function select(id) {
    state.selected = id;
    mark();
    const tr = state.trs.get(id);
    if (tr) tr.scrollIntoView({ block: "nearest" });
  }

  function move(delta) {
    if (!state.rows.length) return;
    let index = state.rows.findIndex((r) => r.id === state.selected);
    if (index < 0) index = delta > 0 ? -1 : state.rows.length;
    index = Math.max(0, Math.min(state.rows.length - 1, index + delta));
    select(state.rows[index].id);
    if (state.open !== null) openDetail(state.rows[index].id);
  }

  document.addEventListener("keydown", (e) => {
    const t = e.target;
    const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement;
    if (e.key === "Escape") {
      if (typing) t.blur(); else closeDetail();
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "Enter" && t instanceof Element && t.closest("button, a")) return;
    if (e.key === "/") {
      e.preventDefault();
      $("filter").focus();
      $("filter").select();
    } else if (e.key === "j" || e.key === "ArrowDown") {
      e.preventDefault(); move(1);
    } else if (e.key === "k" || e.key === "ArrowUp") {
      e.preventDefault(); move(-1);
    } else if (e.key === "Enter" && state.selected !== null) {
      e.preventDefault(); openDetail(state.selected);
    }
  });

  // ---- the detail view ----------------------------------------------------------
  function section(title, id, ...content) {
    return el("section", { class: "sec", id }, el("h3", null, title), content);
  }
  function kv(pairs) {
    return el("table", { class: "kv" },
      pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
        .map(([k, v]) => el("tr", null, el("th", null, k), el("td", null, v))));
  }
  function headerTable(headers, id) {
    if (!headers.length) return el("p", { class: "note" }, "none");
    return el("table", { class: "hdrs", id },
      headers.map(([name, value]) => el("tr", null, el("td", null, name), el("td", null, value))));
  }
  function copyButton(label, text, id) {
    const button = el("button", { type: "button", class: "copy", id, title: "Copy" }, label);
    button.addEventListener("click", async () => {
      try { await navigator.clipboard.writeText(text); } catch (_) { fallbackCopy(text); }
      button.textContent = "copied";
      button.classList.add("done");
      setTimeout(() => { button.textContent = label; button.classList.remove("done"); }, 1500);
    });
    return button;
  }
  function fallbackCopy(text) {
    const area = el("textarea", null);
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  function bodyView(title, id, raw, pretty, bodySize) {
    if (raw === null || raw === undefined) {
      return section(title, id, el("p", { class: "note" }, `not kept (${size(bodySize)})`));
    }
    const pre = el("pre", { class: "body" });
    const tabs = el("span", { class: "tabs" });
    const show = (which) => {
      pre.textContent = which === "pretty" ? pretty : raw;
      for (const b of tabs.children) b.classList.toggle("on", b.dataset.view === which);
    };
    if (pretty !== null) {
      tabs.append(el("button", { type: "button", "data-view": "pretty", onclick: () => show("pretty") }, "pretty"));
    }
    tabs.append(el("button", { type: "button", "data-view": "raw", onclick: () => show("raw") }, "raw"));
    const head = el("h3", null, `${title} · ${size(bodySize)}`, tabs,
      pretty === null ? el("span", { class: "note" }, "  not JSON") : null);
    show(pretty !== null ? "pretty" : "raw");
    return el("section", { class: "sec", id }, head, pre);
  }

  function renderDetail(d) {
    const pane = $("detail");
    pane.hidden = false;
    document.body.classList.add("split");
    const title = el("span", { class: "dtitle" }, `#${d.id} `, el("b", null, d.method), ` ${target(d)}`);
    const head = el("div", { class: "dhead" }, title,
      el("button", { type: "button", class: "close", title: "Close (Esc)", onclick: closeDetail }, "×"));
    const cookies = d.headers.filter(([n]) => n.toLowerCase() === "cookie");
    const query = [...new URLSearchParams(d.query)];
    const parts = [
      head, actions(d), el("div", { id: "replay-result" }),
      section("Request", "summary", kv([
        ["received", when(d.received_at)],
        ["token", d.token ? `${d.verdict} (${d.token})` : d.verdict],
        ["answered", `${d.status} in ${ms(d.latency_ms)} ms`],
        ["refused because", d.error],
        ["delivery", d.attempt ? (d.attempt > 1
          ? `resend: attempt ${d.attempt}, ${since(d.received_at - d.first_seen_at)} after the first`
          : "first delivery of this body") : null],
        ["Vendasta would", d.reaction ? NEXT_WORDS[d.reaction] || d.reaction : null],
      ])),
    ];
    const ids = Object.entries(d.ids || {});
    if (ids.length) {
      parts.push(section("Ids", "ids", el("ul", { class: "ids" }, ids.map(([kind, value]) =>
        el("li", null, el("span", { class: "kind" }, kind), el("code", null, value),
          copyButton("copy", value, `copy-${kind}`))))));
    }
    if (query.length) parts.push(section("Query", "query", headerTable(query, "query-table")));
    parts.push(section("Headers", "headers", headerTable(d.headers, "header-table")));
    if (cookies.length) parts.push(section("Cookies", "cookies", headerTable(cookies, "cookie-table")));
    parts.push(bodyView("Body", "body", d.body, d.body_pretty, d.body_size));
    if (d.timeline.length > 1) parts.push(timeline(d));
    if (d.forward) parts.push(...handler(d.forward, d.reaction));
    pane.replaceChildren(...parts);
  }

  function actions(d) {
    const kept = d.body !== null;
    const input = el("input", { id: "target", type: "url", value: d.replay_target, spellcheck: "false",
      "aria-label": "Replay target", title: "Where Replay sends it" });
    const bar = el("div", { class: "actions" },
      el("button", { type: "button", class: "primary", id: "replay", disabled: !kept,
        onclick: () => replay(d, null) }, "Replay"),
      input,
      el("button", { type: "button", id: "edit", disabled: !kept, onclick: () => editor(d) }, "Edit and replay"),
      kept && d.curl ? copyButton("Copy as curl", d.curl, "copy-curl") : null,
      kept ? el("a", { class: "button", id: "download", href: withSecret(`/api/requests/${d.id}/body`),
        download: `vwh-request-${d.id}.json` }, "Download body") : null);
    const note = state.info.replay_token ? null
      : el("p", { class: "note" }, "No --token given: replays carry no token.");
    return el("div", null, bar, note);
  }

  function editor(d) {
    let box = $("editor");
    if (box) { box.remove(); return; }
    const area = el("textarea", { spellcheck: "false", "aria-label": "Body to send" });
    area.value = d.body_pretty !== null ? d.body_pretty : d.body;
    const problem = el("span", { class: "error", id: "edit-error" });
    box = el("div", { id: "editor" }, area, el("div", { class: "row" },
      el("button", { type: "button", class: "primary", id: "send-edited",
        onclick: () => replay(d, area.value, problem) }, "Send edited body"),
      el("button", { type: "button", onclick: () => box.remove() }, "Cancel"), problem));
    $("replay-result").before(box);
    area.focus();
  }

  async function replay(d, body, problem) {
    const result = $("replay-result");
    const url = $("target").value.trim();
    if (problem) problem.textContent = "";
    result.replaceChildren(el("p", { class: "note" }, `sending to ${url} …`));
    for (const id of ["replay", "send-edited"]) if ($(id)) $(id).disabled = true;
    try {
      const out = await api(`/api/requests/${d.id}/replay`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ target: url, body }),
      });
      result.replaceChildren(outcomeView(out));
    } catch (error) {
      if (problem) problem.textContent = error.message;
      result.replaceChildren(el("div", { class: "outcome failed error" }, `not sent: ${error.message}`));
    } finally {
      for (const id of ["replay", "send-edited"]) if ($(id)) $(id).disabled = false;
    }
  }

  function outcomeView(out) {
    return el("div", { class: `outcome ${out.outcome}` },
      el("b", null, out.outcome), ` ${out.method} ${out.url}`,
      el("ol", { class: "attempts" }, out.attempts.map((a) => el("li", { class: "attempt" },
        a.waited_s ? `after ${a.waited_s.toFixed(1)}s: ` : "",
        el("span", { class: statusClass(a.status) }, a.status !== null ? a.status : a.error),
        ` in ${ms(a.latency_ms)} ms · Vendasta would ${NEXT_WORDS[a.reaction] || a.reaction}`,
        a.answer ? el("pre", { class: "answer" }, a.answer) : null))));
  }

  function timeline(d) {
    const first = d.timeline[0].received_at;
    return section(`Deliveries of this body (${d.timeline.length})`, "timeline",
      el("ol", { class: "timeline" }, d.timeline.map((r) => el("li", {
        class: r.id === d.id ? "here" : null, onclick: () => openDetail(r.id),
      }, `#${r.id}  ${clock(r.received_at)}  ${r.received_at > first ? since(r.received_at - first) : "first"}`,
      `  answered ${r.status}`, r.forward ? `  handler ${handlerText(r)}` : ""))));
  }

  function handler(fwd, reaction) {
    return [
      section("Handler", "handler", kv([
        ["url", fwd.url],
        ["answered", fwd.status !== null ? `${fwd.status} in ${ms(fwd.latency_ms)} ms` : null],
        ["failed", fwd.error],
        ["Vendasta would", reaction ? NEXT_WORDS[reaction] || reaction : null],
      ])),
      section("Handler headers", "handler-headers", headerTable(fwd.headers, "handler-header-table")),
      bodyView("Handler body", "handler-body", fwd.body, fwd.body_pretty,
        fwd.body ? new TextEncoder().encode(fwd.body).length : 0),
    ];
  }

  async function openDetail(id) {
    state.open = id;
    state.selected = id;
    mark();
    const gen = ++detailGeneration;
    try {
      const d = await api(`/api/requests/${id}`);
      if (gen === detailGeneration) renderDetail(d);
    } catch (error) {
      if (gen === detailGeneration) $("detail").replaceChildren(el("p", { class: "error" }, error.message));
    }
  }

  function closeDetail() {
    state.open = null;
    detailGeneration++;
    $("detail").hidden = true;
    document.body.classList.remove("split");
    $("detail").replaceChildren();
    mark();
  }

  // ---- live stream and start ----------------------------------------------------
  function connect() {
    const live = $("live");
    if (!state.info.live) {
      live.textContent = "store only";
      return;
    }
    const stream = new EventSource(withSecret("/api/events"));
    stream.addEventListener("open", () => { live.textContent = "live"; live.className = "live on"; });
    stream.addEventListener("request", scheduleCatchUp);
    stream.addEventListener("gap", scheduleCatchUp);
    stream.addEventListener("error", () => { live.textContent = "reconnecting"; live.className = "live off"; });
  }

  function wire() {
    let timer = null;
    $("filter").addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => { state.q = $("filter").value.trim(); reload(); }, 150);
    });
    for (const button of document.querySelectorAll(".quick button")) {
      button.addEventListener("click", () => {
        state.outcome = button.dataset.outcome;
        for (const b of document.querySelectorAll(".quick button")) b.classList.toggle("on", b === button);
        reload();
      });
    }
    $("load-older").addEventListener("click", loadOlder);
    $("show-newest").addEventListener("click", reload);
  }

  async function start() {
    if (!SECRET) {
      showError("Open the address vwh printed (it ends in ?token=…): this page needs the run's secret.");
      return;
    }
    try {
      state.info = await api("/api/info");
    } catch (error) { showError(error); return; }
    const info = state.info;
    $("source").textContent = info.live
      ? `listening on ${info.listener}${info.forwarding ? ` → ${info.forward_to}` : ""} · ${info.store}`
      : info.store;
    state.emptyText = info.live
      ? `Nothing kept yet. Send a request to ${info.listener}, e.g. vwh sample order | vwh replay - --token …`
      : "Nothing matches.";
    columns();
    wire();
    connect();
    await reload();
  }

  start();
})();
