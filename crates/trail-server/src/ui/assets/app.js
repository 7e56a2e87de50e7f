// Trail's one script: progressive enhancement of server-rendered pages. No inline script anywhere
// (the Content-Security-Policy forbids it); user data only ever enters the page as text.
"use strict";

(function timeZone() {
  // The server shows times in the viewer's zone, which only the browser knows.
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const current = document.cookie.split("; ").find((c) => c.startsWith("trail_tz="));
  if (zone && (!current || decodeURIComponent(current.slice(9)) !== zone)) {
    document.cookie = "trail_tz=" + encodeURIComponent(zone) + "; path=/; SameSite=Strict; max-age=31536000";
    if (document.body.dataset.zoned === "true") location.reload();
  }
})();

// Rows open their details on double-click, or Enter when focused.
document.querySelectorAll("tr[data-href]").forEach((row) => {
  const open = () => { location.href = row.dataset.href; };
  row.addEventListener("dblclick", open);
  row.addEventListener("keydown", (event) => { if (event.key === "Enter") open(); });
});

// Job links open the job in a window of its own.
document.querySelectorAll("a[data-window]").forEach((link) => {
  link.addEventListener("click", (event) => {
    event.preventDefault();
    window.open(link.href, link.dataset.window, "popup,width=1100,height=800");
  });
});

// Destructive forms ask first.
document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => { if (!confirm(form.dataset.confirm)) event.preventDefault(); });
});

// The status page follows operations live.
const live = document.getElementById("live-status");
if (live && window.EventSource) {
  const state = document.getElementById("live-state");
  const source = new EventSource("/api/v1/status/stream");
  source.onopen = () => { state.textContent = "live"; };
  source.onerror = () => { state.textContent = "reconnecting…"; };
  source.addEventListener("lagged", () => location.reload());
  // Events say which job changed; the job itself is fetched, so updates that arrive out of
  // order never leave a stale state (only the newest fetch per job is shown).
  const latest = new Map();
  source.addEventListener("job", async (message) => {
    const update = JSON.parse(message.data);
    const id = Number(update.job);
    const mine = (latest.get(id) || 0) + 1;
    latest.set(id, mine);
    const response = await fetch("/api/v1/jobs/" + id, { credentials: "same-origin" });
    if (!response.ok || latest.get(id) !== mine) return;
    const job = await response.json();
    let row = live.querySelector('tr[data-job="' + id + '"]');
    if (!row) {
      row = document.createElement("tr");
      row.dataset.job = String(id);
      for (const name of ["job", "name", "status", "queued", "running", "succeeded", "failed", "cancelled", "last"]) {
        const cell = document.createElement("td");
        cell.dataset.field = name;
        row.appendChild(cell);
      }
      live.querySelector("tbody").prepend(row);
      const empty = document.getElementById("live-empty");
      if (empty) empty.remove();
    }
    const set = (field, text) => { row.querySelector('[data-field="' + field + '"]').textContent = text; };
    const link = document.createElement("a");
    link.href = "/jobs/" + id;
    link.textContent = String(id);
    row.querySelector('[data-field="job"]').replaceChildren(link);
    set("name", job.name);
    set("status", job.status);
    row.querySelector('[data-field="status"]').className = "st-" + String(job.status).replace(/[^a-z]/g, "");
    for (const name of ["queued", "running", "succeeded", "failed", "cancelled"]) set(name, String(job.counts[name]));
    set("last", update.target ? update.target + ": " + update.target_status : "submitted");
  });
}
