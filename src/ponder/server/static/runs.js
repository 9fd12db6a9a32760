/* The runs list: /api/runs with the filters, refreshed while any run is running. */
"use strict";

(() => {
  const q = document.getElementById("q"), status = document.getElementById("status"), mode = document.getElementById("mode");
  const body = document.querySelector("#runs tbody"), count = document.getElementById("count");
  const params = new URLSearchParams(location.search);
  q.value = params.get("q") || ""; status.value = params.get("status") || ""; mode.value = params.get("mode") || "";
  let timer = null, seq = 0;

  function row(r) {
    const id = P.esc(r.id);
    return `<tr data-id="${id}" data-status="${P.esc(r.status)}" data-mode="${P.esc(r.mode)}">` +
      `<td>${P.badge(r.status)}</td><td class="mono"><a href="/runs/${encodeURIComponent(r.id)}">${id.slice(0, 12)}</a></td>` +
      `<td>${P.esc(r.mode)}</td><td>${P.esc(r.model || "")}</td>` +
      `<td class="task" title="${P.esc(r.task)}">${P.esc((r.task || "").slice(0, 140))}</td>` +
      `<td>${P.when(r.started)}</td><td class="num">${P.secs(r.wall_s)}</td><td class="num">${P.num(r.tokens)}</td>` +
      `<td class="num">${P.cost(r.cost_usd)}</td><td class="num crit">${P.num(r.critical_steps)}</td>` +
      `<td class="num">${P.num(r.steps)}</td><td class="num">${r.mode === "swarm" ? P.num(r.agents) : ""}</td></tr>`;
  }

  async function load() {
    const mine = ++seq;
    const u = new URLSearchParams();
    if (q.value.trim()) u.set("q", q.value.trim());
    if (status.value) u.set("status", status.value);
    if (mode.value) u.set("mode", mode.value);
    history.replaceState(null, "", u.toString() ? "?" + u : location.pathname);
    try {
      const runs = await P.fetchJSON("/api/runs?" + u);
      if (mine !== seq) return;  // a newer query answered first
      P.showError("");
      body.innerHTML = runs.length ? runs.map(row).join("") :
        `<tr><td colspan="12" class="empty">no runs${u.toString() ? " match these filters" : " yet: ponder run \"…\" records one"}</td></tr>`;
      count.textContent = `${runs.length} run${runs.length === 1 ? "" : "s"}`;
      clearTimeout(timer);
      if (runs.some((r) => r.status === "running")) timer = setTimeout(load, 2000);
    } catch (e) {
      P.showError("cannot list runs: " + e.message);
    }
  }

  let debounce = null;
  q.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(load, 200); });
  status.addEventListener("change", load);
  mode.addEventListener("change", load);
  load();
})();
