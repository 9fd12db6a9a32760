/* The run page: draws the view the server folds out of the journal (ponder/server/runview.py).
 *
 * The first load (/api/runs/ID) and every live update (SSE `patch` events from
 * /api/runs/ID/stream) have the same shape and are applied the same way: agents and steps
 * are upserted by key, memory writes and marks are placed at their offset, and the run
 * summary, critical path and parallelism are replaced. Nothing here decides what is
 * critical: the server says which agents and orchestrator steps are on the path.
 */
"use strict";

(() => {
  const runId = decodeURIComponent(location.pathname.replace(/^\/runs\//, "").replace(/\/$/, ""));
  const S = {run: null, agents: {}, steps: {}, memory: [], markers: [], critical: null, parallelism: [],
             skew: 0, selected: null, open: new Set(), stream: null, ended: false};
  const $ = (id) => document.getElementById(id);
  const dirty = new Set();
  let frame = 0, ticker = 0;

  // ---- state --------------------------------------------------------------------------------
  function apply(p) {
    if (p.now) S.skew = p.now - Date.now() / 1000;
    if (p.run) S.run = p.run;
    if (p.critical) S.critical = p.critical;
    if (p.parallelism) S.parallelism = p.parallelism;
    for (const [k, a] of Object.entries(p.agents || {})) S.agents[k] = a;
    const changedAgents = new Set();
    for (const [k, st] of Object.entries(p.steps || {})) { S.steps[k] = st; changedAgents.add(st.agent); }
    if (p.memory && p.memory.length) { S.memory.splice(p.memory_from, p.memory.length, ...p.memory); dirty.add("memory"); }
    if (p.markers && p.markers.length) { S.markers.splice(p.markers_from, p.markers.length, ...p.markers); dirty.add("marks"); }
    if (S.selected == null && S.run) S.selected = S.run.main;
    ["summary", "timeline", "tree"].forEach((d) => dirty.add(d));
    if (changedAgents.has(S.selected) || (p.agents && S.selected in p.agents)) dirty.add("agent");
    schedule();
  }

  function schedule() { if (!frame) frame = requestAnimationFrame(render); }

  function render() {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    if (!dirty.size || !S.run) return;
    const t0 = performance.now();
    if (dirty.has("summary")) renderSummary();
    if (dirty.has("timeline")) renderTimeline();
    if (dirty.has("tree")) renderTree();
    if (dirty.has("agent")) renderAgent();
    if (dirty.has("memory")) renderMemory();
    if (dirty.has("marks")) renderMarks();
    dirty.clear();
    document.body.dataset.rendered = String((+document.body.dataset.rendered || 0) + 1);
    document.body.dataset.renderMs = (performance.now() - t0).toFixed(1);
  }

  const now = () => Date.now() / 1000 + S.skew;
  const running = () => S.run && S.run.status === "running" && !S.ended;
  const isCritical = (st) => {
    const c = S.critical;
    if (!c || !st.step) return false;
    if (c.agents.includes(st.agent)) return true;
    return st.agent === c.main && c.orchestrator_steps.includes(st.step);
  };
  // an agent still running when its run is not: the run was interrupted (or stopped without word from it)
  const agentStatus = (a) => (["running", "queued"].includes(a.status) && S.run && S.run.status !== "running"
    ? (S.run.status === "interrupted" ? "interrupted" : "stopped") : a.status);
  const agentOrder = () => Object.values(S.agents).sort((a, b) =>
    (a.id === S.run.main ? -1 : b.id === S.run.main ? 1 : a.order - b.order));
  const stepsOf = (agent) => Object.values(S.steps).filter((s) => s.agent === agent)
    .sort((a, b) => (a.start - b.start) || (a.key < b.key ? -1 : 1));

  // ---- summary ------------------------------------------------------------------------------
  function renderSummary() {
    const r = S.run;
    document.title = `ponder · ${r.id.slice(0, 12)} · ${r.status}`;
    $("run-id").textContent = r.id;
    $("live").innerHTML = running() ? '<span class="live">live</span>' : "";
    const wall = running() ? Math.max(now() - r.started, 0) : r.wall_s;
    const fact = (k, v, cls = "") => `<div class="fact ${cls}"><b>${k}</b><span>${v}</span></div>`;
    const u = r.usage || {};
    $("summary").innerHTML =
      `<h1>${P.badge(r.status)} ${P.esc(r.mode)} · ${P.esc(r.model || "")}</h1>` +
      P.fold(r.task, 600, "task") +
      `<div class="facts">` +
      fact("started", P.when(r.started)) + fact("wall time", P.secs(wall), "wall") +
      fact("tokens", `${P.num(r.tokens)} <span class="muted">(${P.num(u.reasoning_tokens)} reasoning)</span>`) +
      fact("cost", P.cost(r.cost_usd)) + fact("model calls", P.num(r.calls)) + fact("steps", P.num(r.steps)) +
      fact(running() ? "critical steps so far" : "critical steps", `<span id="crit-steps">${P.num(r.critical_steps)}</span>`) +
      (r.mode === "swarm" ? fact("sub-agents", P.num(r.agents)) + fact("peak parallel", P.num(peak())) : "") +
      (r.attempts > 1 ? fact("attempts", P.num(r.attempts)) : "") + `</div>` +
      (r.reason ? `<div class="note">${P.esc(r.reason)}</div>` : "") +
      (r.answer != null ? `<h2>Answer</h2>${P.fold(r.answer, 3000, "answer")}` : "");
  }

  const peak = () => S.parallelism.reduce((m, p) => Math.max(m, p[1]), 0);

  // ---- timeline -----------------------------------------------------------------------------
  function niceStep(span) {
    const raw = span / 8, p = Math.pow(10, Math.floor(Math.log10(raw || 1)));
    for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
    return 10 * p;
  }

  function renderTimeline() {
    const r = S.run, t0 = r.started;
    const end = running() ? now() : Math.max(r.last_ts || t0, r.finished || t0);
    const span = Math.max(end - t0, 1e-3);
    const X = (t) => Math.min(Math.max(((t - t0) / span) * 100, 0), 100);
    const W = (a, b) => Math.max(X(b) - X(a), 0);
    const agents = agentOrder();
    const step = niceStep(span);
    let ticks = "", grid = "";
    for (let t = 0; t <= span + 1e-9; t += step) {
      const x = X(t0 + t);
      ticks += `<span style="left:${x}%${x > 96 ? ";transform:translateX(-100%)" : ""}">${P.secs(t).replace(" ms", "ms")}</span>`;
      grid += `<div class="tl-grid" style="left:${X(t0 + t)}%"></div>`;
    }
    const marksBy = {};
    for (const m of S.markers) (marksBy[m.agent] = marksBy[m.agent] || []).push(m);
    const labels = ['<div class="tl-label axis muted">agent · steps</div>'];
    const rows = [`<div class="tl-axis">${ticks}</div>`];
    const tnow = now();
    for (const a of agents) {
      const sel = a.id === S.selected ? " sel" : "";
      const st = agentStatus(a);
      labels.push(`<div class="tl-label${sel}" data-agent="${P.esc(a.id)}" title="${P.esc(a.goal || a.name)}">` +
        `<span class="dot ${P.esc(st)}"></span>${P.esc(a.name)} <span class="muted">${a.steps}</span></div>`);
      let bars = grid;
      for (const s of stepsOf(a.id)) {
        const crit = isCritical(s) ? " crit" : "";
        const attrs = `data-agent="${P.esc(a.id)}" data-step="${s.step}" data-key="${P.esc(s.key)}"`;
        for (const c of s.calls) {
          const w = W(c.start, c.end), tt = c.ttft_s != null && c.total_s > 0 ? Math.min(c.ttft_s / c.total_s, 1) * 100 : 0;
          const u = c.usage || {};
          const tip = `${a.name} · step ${s.step}${crit ? " · critical" : ""}\n${c.error ? "error: " + c.error.type + "\n" : ""}` +
            `${P.secs(c.total_s)} · TTFT ${P.secs(c.ttft_s)} · ${P.tps(c.tps)}\n${P.num((u.prompt_tokens || 0) + (u.completion_tokens || 0))} tokens · ${P.cost(c.cost_usd)}`;
          bars += `<div class="bar model${crit}${c.error ? " err" : ""}" ${attrs} style="left:${X(c.start)}%;width:${w}%" title="${P.esc(tip)}">` +
            (tt ? `<i style="width:${tt}%"></i>` : "") + `</div>`;
        }
        if (!s.calls.length || (s.live && running())) {  // a call still streaming
          if (running() && s.end == null) {
            const from = s.calls.length ? s.calls[s.calls.length - 1].end : s.start;
            bars += `<div class="bar model running${crit}" ${attrs} style="left:${X(from)}%;width:${W(from, tnow)}%" title="${P.esc(a.name)} · step ${s.step} · in flight"></div>`;
          }
        }
        for (const t of s.tools) {
          const tend = t.end != null ? t.end : running() ? tnow : t.start;
          const cls = (t.end == null ? " running" : "") + (t.ok === false ? " err" : "");
          bars += `<div class="bar tool${crit}${cls}" ${attrs} data-tool="${P.esc(t.name)}" style="left:${X(t.start)}%;width:${W(t.start, tend)}%" ` +
            `title="${P.esc(`${t.name} · ${t.ok === false ? "error" : t.end == null ? "running" : "ok"} · ${P.secs(t.duration_s ?? (tend - t.start))}`)}"></div>`;
        }
      }
      for (const m of marksBy[a.id] || []) {
        const cls = m.kind + (m.kind === "verification" ? (m.ok ? " ok" : " bad") : "");
        bars += `<div class="mark ${P.esc(cls)}" data-kind="${P.esc(m.kind)}" style="left:${X(m.ts)}%" title="${P.esc(m.text)}"></div>`;
      }
      rows.push(`<div class="tl-row${sel}" data-agent="${P.esc(a.id)}">${bars}</div>`);
    }
    const swarm = r.mode === "swarm";
    labels.push(`<div class="tl-label par"><b>${swarm ? "sub-agents" : "agents"} running</b><br><span class="muted">peak ${peak()}</span></div>`);
    rows.push(`<div class="tl-par">${parallelismSvg(X, end)}</div>`);
    const zoom = +$("zoom").value || 1;
    const el = $("timeline");
    const sx = el.querySelector(".tl-scroll")?.scrollLeft || 0, sy = el.scrollTop;
    el.classList.toggle("dim", $("dim").checked);
    el.innerHTML = `<div class="tl-labels">${labels.join("")}</div>` +
      `<div class="tl-scroll"><div class="tl-canvas" style="width:${zoom * 100}%">${rows.join("")}` +
      (running() ? `<div class="now-line" style="left:${X(tnow)}%"></div>` : "") + `</div></div>`;
    el.querySelector(".tl-scroll").scrollLeft = sx;
    el.scrollTop = sy;
  }

  function parallelismSvg(X, end) {
    const pts = S.parallelism, top = Math.max(peak(), 1), H = 50;
    if (!pts.length) return `<svg viewBox="0 0 1000 ${H}" preserveAspectRatio="none"></svg>`;
    const Y = (n) => H - 2 - (n / top) * (H - 6);
    let d = `M0,${Y(0)}`, prev = 0;
    for (const [t, n] of pts) { const x = X(t) * 10; d += ` L${x.toFixed(1)},${Y(prev)} L${x.toFixed(1)},${Y(n)}`; prev = n; }
    d += ` L${(X(end) * 10).toFixed(1)},${Y(prev)}`;
    return `<svg viewBox="0 0 1000 ${H}" preserveAspectRatio="none" aria-label="agents running over time">` +
      `<path d="${d} L${(X(end) * 10).toFixed(1)},${H} L0,${H} Z" fill="#b3c8ec" stroke="none"/>` +
      `<path d="${d}" fill="none" stroke="#4a78c2" stroke-width="1.5" vector-effect="non-scaling-stroke"/></svg>`;
  }

  // ---- agent tree -----------------------------------------------------------------------------
  function renderTree() {
    const kids = {};
    const all = agentOrder();
    for (const a of all) if (a.id !== S.run.main) (kids[a.parent || S.run.main] = kids[a.parent || S.run.main] || []).push(a);
    const critAgents = new Set(S.critical ? S.critical.agents : []);
    const byTask = {};
    for (const a of all) if (a.task_id) byTask[a.task_id] = a.name;
    const node = (a) => {
      const st = agentStatus(a);
      const deps = (a.depends_on || []).map((d) => byTask[d] || d);
      const meta = [`${a.steps} steps`, `${P.num(a.tokens)} tok`, P.cost(a.cost_usd)];
      if (a.task_id) meta.unshift(a.task_id);
      if (a.launched_at != null) meta.push(`launched at step ${a.launched_at}`);
      if (a.delivered_at != null) meta.push(`delivered at step ${a.delivered_at}`);
      if (deps.length) meta.push(`after ${deps.join(", ")}`);
      const crit = a.id !== S.run.main && critAgents.has(a.id) ? " crit" : "";
      const children = kids[a.id] || [];
      return `<li><div class="node${a.id === S.selected ? " sel" : ""}${crit}" data-agent="${P.esc(a.id)}" data-status="${P.esc(st)}">` +
        `${P.badge(st)} <span class="name">${P.esc(a.name)}</span><div class="meta">${P.esc(meta.join(" · "))}</div>` +
        (a.goal && a.id !== S.run.main ? `<div class="goal" title="${P.esc(a.goal)}">${P.esc(a.goal.slice(0, 300))}</div>` : "") +
        (a.instructions ? `<details><summary>instructions</summary>${P.fold(a.instructions, 800)}</details>` : "") +
        `</div>` + (children.length ? `<ul class="tree">${children.map(node).join("")}</ul>` : "") + `</li>`;
    };
    const root = S.agents[S.run.main];
    const open = [...$("tree").querySelectorAll(".node details[open]")].map((d) => d.parentElement.dataset.agent);
    $("tree").innerHTML = root ? `<ul class="tree root">${node(root)}</ul>` : '<div class="empty">no agents yet</div>';
    for (const id of open) $("tree").querySelector(`.node[data-agent="${CSS.escape(id)}"] details`)?.setAttribute("open", "");
  }

  // ---- one agent's steps ----------------------------------------------------------------------
  function renderAgent() {
    const a = S.agents[S.selected];
    if (!a) { $("agent").innerHTML = ""; $("steps").innerHTML = ""; return; }
    $("steps-title").textContent = `Steps · ${a.name}`;
    const st = agentStatus(a);
    const inputs = (a.inputs || []).map((m) => `<h4>${P.esc(m.role)}</h4>${P.fold(m.content, 1200)}`).join("");
    $("agent").innerHTML = `<div class="agent-head" data-agent="${P.esc(a.id)}">${P.badge(st)} <b>${P.esc(a.name)}</b>` +
      ` <span class="muted">${P.esc(a.model || "")} · ${a.steps} steps · ${P.num(a.calls)} calls · ${P.num(a.tokens)} tok · ${P.cost(a.cost_usd)}</span>` +
      (a.goal ? `<h4>task</h4>${P.fold(a.goal, 1000)}` : "") +
      (inputs ? `<details><summary>what it was given (${a.inputs.length} messages)</summary>${inputs}</details>` : "") +
      (a.error ? `<h4>error</h4><div class="err-text">${P.esc(a.error)}</div>` : "") +
      (a.answer && a.id !== S.run.main ? `<h4>answer</h4>${P.fold(a.answer, 1500)}` : "") + `</div>`;
    const steps = stepsOf(a.id);
    $("steps").innerHTML = steps.length ? steps.map(stepHtml).join("") : '<div class="empty">no steps yet</div>';
    for (const d of $("steps").querySelectorAll("details.step[open]")) fillStep(d);
  }

  function stepTotals(s) {
    let tok = 0, cost = 0, dur = 0, ttft = null, tps = null, reasoning = 0;
    for (const c of s.calls) {
      const u = c.usage || {};
      tok += (u.prompt_tokens || 0) + (u.completion_tokens || 0); reasoning += u.reasoning_tokens || 0;
      cost += c.cost_usd || 0; dur += c.total_s || 0;
      if (ttft == null && c.ttft_s != null) ttft = c.ttft_s;
      if (c.tps != null) tps = c.tps;
    }
    return {tok, cost, dur, ttft, tps, reasoning};
  }

  function stepHtml(s) {
    const t = stepTotals(s), crit = isCritical(s);
    const badges = [];
    if (crit) badges.push('<span class="badge crit">critical</span>');
    for (const v of s.verifications) badges.push(`<span class="badge ${v.ok ? "ver-ok" : "ver-bad"}" title="${P.esc(v.reason || "")}">verify ${v.ok ? "✓" : "✗"}</span>`);
    for (const b of s.budget) badges.push(`<span class="badge budget">${P.esc(b.budget)} budget</span>`);
    if (s.calls.some((c) => c.error)) badges.push('<span class="badge error">model error</span>');
    if (s.end == null && running()) badges.push('<span class="badge running">running</span>');
    const tools = s.tools.map((x) => P.esc(x.name)).join(", ");
    const open = S.open.has(s.key) ? " open" : "";
    return `<details class="step${crit ? " crit" : ""}" data-key="${P.esc(s.key)}" data-agent="${P.esc(s.agent)}" data-step="${s.step}"${open}>` +
      `<summary><span class="n">step ${s.step}</span><span class="fig">${P.secs(t.dur)}</span>` +
      `<span class="fig">TTFT ${P.secs(t.ttft)}</span><span class="fig">${P.tps(t.tps)}</span>` +
      `<span class="fig">${P.num(t.tok)} tok</span><span class="fig">${P.cost(t.cost)}</span>` +
      (tools ? `<span class="fig">tools: ${tools}</span>` : "") + badges.join(" ") +
      (s.notes.length ? `<span class="note">${P.esc(s.notes.join("; "))}</span>` : "") +
      `</summary><div class="step-body"></div></details>`;
  }

  function fillStep(d) {
    const s = S.steps[d.dataset.key];
    if (!s) return;
    const parts = [];
    s.calls.forEach((c, i) => {
      const u = c.usage || {};
      if (s.calls.length > 1) parts.push(`<h4>model call ${i + 1}</h4>`);
      if (c.error) parts.push(`<div class="err-text">${P.esc(c.error.type)}: ${P.esc(c.error.message)}</div>`);
      if (c.reasoning) parts.push(`<h4>reasoning</h4>${P.fold(c.reasoning, 4000, "reasoning")}`);
      if (c.content) parts.push(`<h4>content</h4>${P.fold(c.content, 4000, "content")}`);
      parts.push(`<div class="muted">${P.esc(c.model || "")} · ${P.num(u.prompt_tokens)} prompt (${P.num(u.cached_prompt_tokens)} cached) · ` +
        `${P.num(u.completion_tokens)} completion (${P.num(u.reasoning_tokens)} reasoning) · TTFT ${P.secs(c.ttft_s)} · ` +
        `${P.tps(c.tps)} · ${P.secs(c.total_s)} · ${P.cost(c.cost_usd)}${c.finish_reason ? " · " + P.esc(c.finish_reason) : ""}</div>`);
    });
    if (s.live) {
      if (s.live.reasoning) parts.push(`<h4>reasoning (streaming)</h4>${P.fold(s.live.reasoning, 4000, "reasoning")}`);
      if (s.live.content) parts.push(`<h4>content (streaming)</h4>${P.fold(s.live.content, 4000, "content")}`);
    }
    for (const m of s.messages) parts.push(`<h4>${P.esc(m.role)} message</h4>${P.fold(m.content, 1000)}`);
    if (s.tools.length) parts.push("<h4>tool calls</h4>");
    for (const t of s.tools) {
      const state = t.end == null ? "running" : t.ok ? "ok" : "error";
      const v = t.verification ? ` · verification ${t.verification.ok ? "passed" : "rejected"}${t.verification.reason ? ": " + P.esc(t.verification.reason) : ""}` : "";
      parts.push(`<details class="tool${t.ok === false ? " err" : ""}" data-call="${P.esc(t.id)}"><summary><b>${P.esc(t.name)}</b> · ${state} · ` +
        `${P.secs(t.duration_s)}${v}</summary><h4>arguments</h4>${P.fold(P.json(t.arguments), 2000, "args")}` +
        (t.error ? `<h4>error</h4><div class="err-text">${P.esc(t.error)}</div>` : "") +
        (t.result != null ? `<h4>result</h4>${P.fold(t.result, 2000, "result")}` : "") + `</details>`);
    }
    for (const v of s.verifications) if (!s.tools.some((t) => t.id === v.call_id))
      parts.push(`<div class="${v.ok ? "muted" : "err-text"}">verification of ${P.esc(v.call_id)} ${v.ok ? "passed" : "rejected"}: ${P.esc(v.reason || "")}</div>`);
    for (const b of s.budget) parts.push(`<div class="note">${P.esc(b.budget)} budget reached (${b.value} of ${b.limit})</div>`);
    const openTools = [...d.querySelectorAll("details.tool[open]")].map((x) => x.dataset.call);
    const body = d.querySelector(".step-body");
    body.innerHTML = parts.join("") || '<div class="empty">nothing recorded yet</div>';
    for (const id of openTools) body.querySelector(`details.tool[data-call="${CSS.escape(id)}"]`)?.setAttribute("open", "");
  }

  // ---- memory and marks -------------------------------------------------------------------------
  function agentLink(id) { return `<a href="#" class="agent-link" data-agent="${P.esc(id)}">${P.esc(S.agents[id]?.name || id)}</a>`; }

  function renderMemory() {
    if (!S.memory.length) { $("memory").innerHTML = '<div class="empty">no shared-memory writes</div>'; return; }
    const t0 = S.run.started;
    $("memory").innerHTML = `<table class="mem"><thead><tr><th>at</th><th>key</th><th>value</th><th>written by</th><th>step</th></tr></thead><tbody>` +
      S.memory.map((m) => `<tr data-key="${P.esc(m.key)}"><td>${P.secs(m.ts - t0)}</td><td class="mono">${P.esc(m.key)}</td>` +
        `<td>${P.fold(m.value, 400)}</td><td>${agentLink(m.agent)}</td><td>${m.step ?? "—"}</td></tr>`).join("") + `</tbody></table>`;
  }

  function renderMarks() {
    if (!S.markers.length) { $("marks").innerHTML = '<div class="empty">no verifications, budget stops, errors or resumes</div>'; return; }
    const t0 = S.run.started;
    $("marks").innerHTML = `<table class="mem"><tbody>` + S.markers.map((m) =>
      `<tr class="mark-row" data-kind="${P.esc(m.kind)}"><td>${P.secs(m.ts - t0)}</td><td>${P.esc(m.kind)}</td><td>${agentLink(m.agent)}</td>` +
      `<td>${m.step != null ? "step " + m.step : ""}</td><td>${P.esc(m.text)}</td></tr>`).join("") + `</tbody></table>`;
  }

  // ---- interaction ------------------------------------------------------------------------------
  function select(agent, key) {
    if (!S.agents[agent]) return;
    S.selected = agent;
    if (key) S.open.add(key);
    ["timeline", "tree", "agent"].forEach((d) => dirty.add(d));
    render();
    if (key) document.querySelector(`details.step[data-key="${CSS.escape(key)}"]`)?.scrollIntoView({block: "center"});
  }

  document.addEventListener("click", (e) => {
    const bar = e.target.closest(".bar[data-key]");
    if (bar) return select(bar.dataset.agent, bar.dataset.key);
    const link = e.target.closest(".agent-link, .tl-label[data-agent]");
    if (link) { e.preventDefault(); return select(link.dataset.agent); }
    const node = e.target.closest(".node[data-agent]");
    if (node && !e.target.closest("details, button")) return select(node.dataset.agent);
  });
  document.addEventListener("toggle", (e) => {
    const d = e.target;
    if (!(d instanceof HTMLDetailsElement) || !d.classList.contains("step")) return;
    if (d.open) { S.open.add(d.dataset.key); fillStep(d); } else S.open.delete(d.dataset.key);
  }, true);
  $("zoom").addEventListener("input", () => { dirty.add("timeline"); schedule(); });
  $("dim").addEventListener("change", () => { $("timeline").classList.toggle("dim", $("dim").checked); });

  // ---- loading and following ----------------------------------------------------------------------
  function follow() {
    const es = new EventSource(`/api/runs/${encodeURIComponent(S.run.id)}/stream?after=${S.run.seq}`);
    S.stream = es;
    es.addEventListener("patch", (e) => apply(JSON.parse(e.data)));
    es.addEventListener("end", (e) => {
      const d = JSON.parse(e.data);
      es.close(); S.stream = null; S.ended = true; clearInterval(ticker);
      if (S.run) S.run.status = d.status;
      document.body.dataset.streamEnded = d.status;
      ["summary", "timeline", "tree", "agent"].forEach((x) => dirty.add(x));
      schedule();
    });
    ticker = setInterval(() => { if (running()) { dirty.add("summary"); dirty.add("timeline"); schedule(); } }, 1000);
  }

  (async () => {
    try {
      const t0 = performance.now();
      const view = await P.fetchJSON(`/api/runs/${encodeURIComponent(runId)}`);
      apply(view);
      ["memory", "marks", "agent"].forEach((d) => dirty.add(d));
      render();
      void document.body.offsetHeight;  // the layout is part of showing it
      document.body.dataset.firstRenderMs = (performance.now() - t0).toFixed(1);  // since this script started
      document.body.dataset.pageMs = performance.now().toFixed(1);  // since navigation started
      document.body.dataset.loaded = "1";
      if (S.run.status === "running") follow();
    } catch (e) {
      P.showError(`cannot show run ${runId}: ${e.message}`);
      document.body.dataset.loaded = "error";
    }
  })();
})();
