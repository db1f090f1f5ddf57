// Slipway console: live regions and actions. No framework, nothing fetched from elsewhere.
"use strict";

(function () {
  const csrf = () => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  };

  // <div data-live="/url" data-every="2000">: replace the region's content with the
  // fragment the URL returns, every few seconds, while the page is visible. A region whose
  // fragment carries data-final stops polling (e.g. an execution that has ended).
  function live(region) {
    const every = parseInt(region.dataset.every || "2000", 10);
    let stopped = false;
    async function tick() {
      if (stopped) return;
      if (!document.hidden) {
        try {
          const response = await fetch(region.dataset.live, {
            headers: { Accept: "text/html", "X-Console-Fragment": "1" },
            credentials: "same-origin",
          });
          if (response.ok) {
            const focused = document.activeElement && region.contains(document.activeElement);
            if (!focused) {
              region.innerHTML = await response.text();
              region.dataset.updated = String(Date.now());
              if (region.querySelector("[data-final]")) stopped = true;
            }
          } else if (response.status === 401 || response.status === 403) {
            stopped = true;
          }
        } catch (error) {
          // The server may be restarting: try again next tick.
        }
      }
      if (!stopped) setTimeout(tick, every);
    }
    setTimeout(tick, every);
  }

  // <form data-action>: sent with fetch so a refusal shows next to its control; on success
  // the page goes where the server says.
  async function submit(event) {
    const form = event.target.closest("form[data-action]");
    if (!form) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const error = form.querySelector(".form-error");
    if (error) error.textContent = "";
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { Accept: "application/json", "X-CSRF-Token": csrf() },
        credentials: "same-origin",
      });
      let body = {};
      try { body = await response.json(); } catch (e) { body = {}; }
      if (response.ok) {
        window.location.assign(body.location || window.location.href);
        return;
      }
      if (error) error.textContent = body.error || ("refused: HTTP " + response.status);
    } catch (e) {
      if (error) error.textContent = "could not reach the server";
    } finally {
      if (button) button.disabled = false;
    }
  }

  // Tables with data-sortable: click (or Enter on) a header to sort by that column.
  function sortable(table) {
    table.querySelectorAll("th").forEach((th, index) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = th.textContent;
      button.setAttribute("aria-label", "Sort by " + th.textContent);
      th.textContent = "";
      th.appendChild(button);
      button.addEventListener("click", () => {
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        const key = (row) => {
          const cell = row.cells[index];
          const raw = cell ? (cell.dataset.value ?? cell.textContent.trim()) : "";
          const num = parseFloat(raw);
          return Number.isNaN(num) || !/^-?[\d.,e+-]+$/i.test(raw) ? raw : num;
        };
        rows.sort((a, b) => {
          const x = key(a), y = key(b);
          const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
          return ascending ? order : -order;
        });
        rows.forEach((row) => body.appendChild(row));
      });
    });
  }

  document.addEventListener("submit", submit);
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-live]").forEach(live);
    document.querySelectorAll("table[data-sortable]").forEach(sortable);
  });
})();
