// The dashboard's script: sortable tables, tooltips on figure marks, and
// live progress of running evaluations (Server-Sent Events). Loaded from
// /assets/app.js; the pages carry no inline script.
"use strict";

function sortKey(cell) {
  const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
  const n = Number(raw);
  return raw !== "" && !Number.isNaN(n) ? { n: n } : { s: raw.toLowerCase(), empty: raw === "" };
}

function compareKeys(a, b) {
  if (a.empty || b.empty) return (a.empty ? 1 : 0) - (b.empty ? 1 : 0);
  if (a.n !== undefined && b.n !== undefined) return a.n - b.n;
  if (a.n !== undefined) return -1;
  if (b.n !== undefined) return 1;
  return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
}

function makeSortable(table) {
  const heads = table.querySelectorAll("thead th");
  heads.forEach(function (th, column) {
    th.tabIndex = 0;
    th.classList.add("sort");
    const sort = function () {
      const descending = th.getAttribute("aria-sort") === "ascending";
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      rows.sort(function (r1, r2) {
        const a = sortKey(r1.cells[column]);
        const b = sortKey(r2.cells[column]);
        const empty = (a.empty ? 1 : 0) - (b.empty ? 1 : 0);
        if (empty !== 0) return empty;
        const c = compareKeys(a, b);
        return descending ? -c : c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
  });
}

function tooltips() {
  const tip = document.createElement("div");
  tip.className = "tooltip";
  tip.hidden = true;
  document.body.appendChild(tip);
  document.querySelectorAll("[data-tip]").forEach(function (mark) {
    mark.addEventListener("mouseenter", function () {
      tip.textContent = mark.dataset.tip;
      tip.hidden = false;
    });
    mark.addEventListener("mousemove", function (e) {
      tip.style.left = (e.pageX + 14) + "px";
      tip.style.top = (e.pageY + 14) + "px";
    });
    mark.addEventListener("mouseleave", function () { tip.hidden = true; });
  });
}

function follow(live) {
  const bar = live.querySelector("progress");
  const stage = live.querySelector(".stage");
  const source = new EventSource(live.dataset.events);
  live.source = source;
  source.addEventListener("progress", function (e) {
    const p = JSON.parse(e.data);
    if (p.total > 0) bar.value = p.done / p.total;
    stage.textContent = p.stage + " " + p.done + " / " + p.total;
  });
  source.addEventListener("end", function (e) {
    source.close();
    bar.value = 1;
    stage.textContent = e.data.toLowerCase();
    fetch(live.dataset.report, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        const target = document.getElementById("report");
        if (target) {
          target.innerHTML = html;
          target.querySelectorAll("table.sortable").forEach(makeSortable);
        }
      });
  });
  source.onerror = function () { stage.textContent = "reconnecting…"; };
}

// A part of the page fetched again every data-every seconds from
// data-refresh (while the page is visible): a run's table grows as its
// checkpoints are evaluated.
function refresh(part) {
  const every = Number(part.dataset.every || 5) * 1000;
  setInterval(function () {
    if (document.hidden) return;
    fetch(part.dataset.refresh, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        part.querySelectorAll(".live").forEach(function (l) { if (l.source) l.source.close(); });
        part.innerHTML = html;
        part.querySelectorAll("table.sortable").forEach(makeSortable);
        part.querySelectorAll(".live[data-events]").forEach(follow);
      });
  }, every);
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("table.sortable").forEach(makeSortable);
  tooltips();
  document.querySelectorAll(".live[data-events]").forEach(follow);
  document.querySelectorAll("[data-refresh]").forEach(refresh);
});
