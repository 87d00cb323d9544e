// Stream health: live streams, viewers and the active pipeline's stages with
// their drop counts, refreshed from the JSON API every 1.5 s.
import { apiFetch, ensureSession } from "./auth.js";

const connection = document.getElementById("connection");

function fill(tableId, rows, emptyText) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = body.insertRow();
    const td = tr.insertCell();
    td.colSpan = document.querySelectorAll(`#${tableId} th`).length;
    td.textContent = emptyText;
    return;
  }
  for (const cells of rows) {
    const tr = body.insertRow();
    for (const value of cells) tr.insertCell().textContent = String(value);
  }
}

// What a viewer is sent, per rendition: "full", "3/8 ×16", "1/4 ×2 at 8 fps, 3 hidden".
function sent(viewer) {
  const views = viewer.views || [];
  if (views.length === 0) return viewer.receiving;
  const counts = new Map();
  let hidden = 0;
  for (const view of views) {
    if (!view.visible) { hidden += 1; continue; }
    const key = view.rendition + (view.max_fps ? ` at ${view.max_fps} fps` : "");
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  const parts = [...counts].map(([key, n]) => (n > 1 ? `${key} ×${n}` : key));
  if (hidden) parts.push(`${hidden} hidden`);
  return parts.join(", ");
}

// What the stages say of a stream: "ok", or "picture frozen since 14:02:11".
function health(stream) {
  const problems = Object.entries(stream.health || {}).filter(([, event]) => event.state !== "ok");
  if (problems.length === 0) return "ok";
  return problems.map(([kind, event]) => `${kind} ${event.state} since ${new Date(event.since).toLocaleTimeString()}`).join(", ");
}

async function getJSON(path) {
  const response = await apiFetch(path);
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(`${path}: ${body.reason || body.error || `HTTP ${response.status}`}`);
  }
  return response.json();
}

async function refresh() {
  try {
    const [streams, viewers, pipelines] = await Promise.all([getJSON("/api/streams"), getJSON("/api/viewers"), getJSON("/api/pipelines")]);
    fill("streams", streams.map((s) => [s.id, new Date(s.started).toLocaleTimeString(), s.fps.toFixed(1), s.frames, s.viewers, s.drops, s.errors, health(s), s.pipeline, s.node ?? "—"]), "no live streams");
    fill("viewers", viewers.map((v) => [v.id, Array.isArray(v.streams) ? v.streams.join(", ") : v.streams, v.format, v.quality,
      sent(v) + (v.slow ? " (slow)" : ""), v.delivered, v.loss_percent.toFixed(1),
      // The link under the socket (TCP_INFO) and how old frames were when written.
      v.goodput_bytes_per_second == null ? "—" : `${(v.goodput_bytes_per_second * 8 / 1e6).toFixed(2)} Mbit/s`,
      v.rtt_ms == null ? "—" : `${v.rtt_ms} ms`, `${Math.round(v.unsent_bytes / 1024)} KiB`,
      v.frame_age_p95_ms == null ? "—" : `${v.frame_age_p95_ms} ms`]), "no viewers");
    const active = pipelines.pipelines.find((p) => p.name === pipelines.active);
    document.getElementById("pipeline-title").textContent = `Pipeline “${active.name}” — ${active.description}`;
    // Which file runs, since when (a reload makes a new generation), and which streams are routed elsewhere.
    const routes = pipelines.routes.map((r) => `${r.match} → ${r.pipeline}`).join(", ");
    document.getElementById("configuration").textContent = `${pipelines.source}, generation ${pipelines.generation}, loaded `
      + `${new Date(pipelines.loaded_at).toLocaleString()}; ${routes ? `routes: ${routes}; other streams` : "every stream"} run “${active.name}”`;
    fill("pipeline", active.stages.map((stage, i) => {
      const params = Object.entries(stage).filter(([k]) => k !== "stage" && k !== "drops").map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ");
      return [i + 1, stage.stage, params || "–", stage.drops];
    }), "no stages");
    connection.dataset.state = "live";
    connection.textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    connection.dataset.state = "reconnecting";
    connection.textContent = error instanceof TypeError ? "server unreachable, retrying" : `${error.message}; retrying`;
  }
}

await ensureSession("viewer");
refresh();
setInterval(refresh, 1500);
