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
    for (const value of cells) {
      const td = tr.insertCell();
      if (value instanceof Node) td.append(value);
      else td.textContent = String(value);
    }
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

// The last quarter hour of a stream as two small line charts in one SVG:
// frame rate (blue, scaled to its own peak) and capture delay (amber, 0 to
// 2 s, clipped above), so a camera whose link went bad shows as a dip or a climb.
const SVG = "http://www.w3.org/2000/svg";
function historyChart(history) {
  const width = 180, height = 36, points = 90;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.classList.add("history");
  // The quarter hour's frame, so a new stream's first points have a scale.
  const frame = document.createElementNS(SVG, "rect");
  for (const [key, value] of Object.entries({ x: 0.5, y: 0.5, width: width - 1, height: height - 1, rx: 3, fill: "#1b2230", stroke: "#2c3648" })) {
    frame.setAttribute(key, value);
  }
  const span = document.createElementNS(SVG, "title");
  span.textContent = `the last 15 minutes, a point per ${history.interval_s} s`;
  frame.append(span);
  svg.append(frame);
  const fpsPeak = Math.max(1, ...history.fps);
  const line = (values, scale, color, label) => {
    const offset = points - values.length;
    let d = "";
    values.forEach((v, i) => {
      if (v === null) return;
      const x = ((offset + i) / (points - 1)) * width;
      const y = height - 2 - Math.min(1, v / scale) * (height - 4);
      d += `${d && values[i - 1] !== null ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
    });
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", color);
    path.setAttribute("stroke-width", "1.5");
    const title = document.createElementNS(SVG, "title");
    title.textContent = label;
    path.append(title);
    svg.append(path);
  };
  line(history.fps, fpsPeak, "#2563eb", `frame rate, up to ${fpsPeak.toFixed(1)} fps`);
  line(history.ingest_delay_p95_ms, 2000, "#d97706", "capture delay p95, 0–2 s");
  svg.dataset.points = String(history.fps.length);
  return svg;
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
    const [streams, viewers, pipelines] = await Promise.all([getJSON("/api/streams?history=1"), getJSON("/api/viewers"), getJSON("/api/pipelines")]);
    const live = streams.filter((s) => s.live !== false);
    // Cameras the relay pulls ("sources"), live or not: a lost one says why and when it is tried again.
    const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "—");
    fill("sources", streams.filter((s) => s.source).map((s) => [s.id, s.source.url, s.source.state, time(s.source.since),
      `${s.source.frames}${s.source.refused ? ` (${s.source.refused} refused)` : ""}`, s.source.node ?? s.node ?? "—",
      s.source.last_error ?? "—", time(s.source.retry_at)]), "no cameras pulled (\"sources\" in the pipelines file)");
    fill("streams", live.map((s) => [s.id, new Date(s.started).toLocaleTimeString(), s.fps.toFixed(1), s.frames, s.viewers, s.drops, s.errors, health(s), s.pipeline, s.node ?? "—",
      s.ingest_delay_p95_ms == null ? "—" : `${s.ingest_delay_p95_ms} ms`, historyChart(s.history)]), "no live streams");
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
