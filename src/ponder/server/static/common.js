/* ponder viewer: helpers shared by the runs list and the run page (no libraries). */
"use strict";

const P = {};

P.esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

P.secs = (s) => {
  if (s == null || !isFinite(s)) return "—";
  if (s < 1) return (s * 1000).toFixed(0) + " ms";
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
  const m = Math.floor(s / 60), r = Math.round(s - 60 * m);
  return m < 60 ? `${m} min ${r} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
};

P.num = (n) => (n == null ? "—" : Number(n).toLocaleString("en-US"));
P.cost = (c) => (c == null ? "—" : c === 0 ? "$0" : c < 0.01 ? "$" + c.toPrecision(2) : "$" + c.toFixed(2));
P.tps = (t) => (t == null ? "—" : t.toFixed(t < 10 ? 1 : 0) + " tok/s");
P.when = (ts) => (ts ? new Date(ts * 1000).toLocaleString("sv-SE").slice(0, 19) : "—");
P.badge = (status) => `<span class="badge ${P.esc(status)}">${P.esc(status)}</span>`;

/* Long text is folded: the first `limit` characters, and a button that shows the rest. */
P.folds = new Map();
let foldSeq = 0;
P.fold = (text, limit = 1500, cls = "") => {
  if (text == null || text === "") return "";
  text = String(text);
  if (text.length <= limit) return `<pre class="txt ${cls}">${P.esc(text)}</pre>`;
  const id = "f" + (++foldSeq);
  P.folds.set(id, text);
  return `<pre class="txt ${cls}" data-fold="${id}">${P.esc(text.slice(0, limit))}…</pre>` +
    `<button class="more" data-fold="${id}">show all ${P.num(text.length)} characters</button>`;
};
document.addEventListener("click", (e) => {
  const b = e.target.closest("button.more[data-fold]");
  if (!b) return;
  const id = b.dataset.fold, pre = document.querySelector(`pre[data-fold="${id}"]`);
  if (pre && P.folds.has(id)) pre.textContent = P.folds.get(id);
  b.remove();
});

P.json = (v) => { try { return JSON.stringify(v, null, 2); } catch (_) { return String(v); } };

P.fetchJSON = async (url) => {
  const r = await fetch(url, {headers: {Accept: "application/json"}});
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try { const j = await r.json(); if (j.detail) msg = j.detail; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return r.json();
};

P.showError = (msg) => {
  const el = document.getElementById("error");
  if (el) el.innerHTML = msg ? `<div class="error-box">${P.esc(msg)}</div>` : "";
};
