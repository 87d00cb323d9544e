// The live dashboard: one tile per live stream, kept in step with the
// server's viewer_connected / stream_started / stream_ended messages.
// Frames arrive in the binary format and are drawn with createImageBitmap
// on a canvas (bitmaps closed at once, no object URLs), so memory stays flat.
import { ReconnectingSocket, socketURL, describeState } from "./connection.js";
import { ensureSession, handleTokenMessage, protocols } from "./auth.js";

const STALLED_AFTER_MS = 3000;
// A picture older than this is marked delayed even while frames keep coming.
const DELAYED_AFTER_MS = 2000;
const ENDED_NOTICE_MS = 2500;
const CLOCK_PING_MS = 10000;

// The relay's clock minus ours, from our pings' round trips: a frame's
// true age is (our clock + offset) − its captured_at (or received_at). The sample with the
// shortest round trip is the best one (least queueing either way).
const relayClock = {
  offset: 0,
  bestRTT: Infinity,
  sentAt: 0,
  ping(send) {
    this.sentAt = Date.now();
    send(JSON.stringify({ type: "ping" }));
  },
  pong(message) {
    if (typeof message.server_time !== "number" || !this.sentAt) return;
    const now = Date.now();
    const rtt = now - this.sentAt;
    this.sentAt = 0;
    if (rtt <= this.bestRTT) {
      this.bestRTT = rtt;
      this.offset = message.server_time + rtt / 2 - now;
      document.body.dataset.clockOffsetMs = String(Math.round(this.offset));
    }
  },
  now() { return Date.now() + this.offset; },
};

const grid = document.getElementById("grid");
const empty = document.getElementById("empty");
const connection = document.getElementById("connection");
const tiles = new Map(); // stream id -> Tile
let largeTile = null;

// What each tile shows, told to the relay ({"type":"view"}): the picture's
// drawn size in device pixels, so it sends a rendition no larger than
// that, and whether it can be seen at all (on screen, tab shown, not
// under the tile opened large), so a hidden tile costs no bytes.
const views = {
  sent: new Map(), // stream id -> last message text sent
  timer: null,
  schedule() {
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = null; this.flush(); }, 250); // a resize sends each tile's size once, not per pixel
  },
  flush(force = false) {
    if (!socket.isOpen) return;
    for (const tile of tiles.values()) {
      const text = JSON.stringify({ type: "view", stream_id: tile.id, ...tile.view() });
      if (!force && this.sent.get(tile.id) === text) continue;
      this.sent.set(tile.id, text);
      socket.send(text);
    }
  },
  resendAll() {
    this.sent.clear();
    this.flush(true);
  },
};
const sizes = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const tile = tiles.get(entry.target.parentElement?.dataset.streamId);
    if (tile) tile.box = entry.contentRect;
  }
  views.schedule();
});
const onScreen = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    const tile = tiles.get(entry.target.dataset.streamId);
    if (tile) tile.onScreen = entry.isIntersecting;
  }
  views.schedule();
});
document.addEventListener("visibilitychange", () => views.schedule());

class Tile {
  constructor(id) {
    this.id = id;
    this.el = document.createElement("div");
    this.el.className = "tile waiting";
    this.el.dataset.streamId = id;
    this.canvas = document.createElement("canvas");
    this.canvas.width = 640;
    this.canvas.height = 480;
    this.notice = document.createElement("div");
    this.notice.className = "notice";
    this.notice.textContent = "waiting for the first frame…";
    const label = document.createElement("div");
    label.className = "label";
    label.innerHTML = '<span class="id"></span><span class="fps">– fps</span><span class="age">–</span><span class="badge quality">–</span>';
    label.querySelector(".id").textContent = id;
    this.fpsEl = label.querySelector(".fps");
    this.ageEl = label.querySelector(".age");
    this.qualityEl = label.querySelector(".quality");
    // A stage's word on the picture (frozen, dark, covered): a strip over
    // the top of the picture, which stays visible under it.
    this.healthEl = document.createElement("div");
    this.healthEl.className = "health";
    this.healthEl.hidden = true;
    this.health = new Map(); // kind -> { state, since (relay clock, ms) }
    this.el.append(this.canvas, this.healthEl, this.notice, label);
    this.el.addEventListener("click", () => toggleLarge(this));
    this.lastFrameAt = 0;
    this.pictureTakenAt = 0; // the drawn frame's captured_at, else received_at (relay clock)
    this.frameTimes = [];
    this.frames = 0;
    this.decoding = false;
    this.pending = null; // latest frame waiting for the decoder: older ones are dropped
    this.removeTimer = null;
    this.appearedAt = Date.now();
    this.box = null; // the canvas's CSS box, from the ResizeObserver
    this.onScreen = true;
    sizes.observe(this.canvas);
    onScreen.observe(this.el);
  }

  get visible() {
    return this.onScreen && document.visibilityState === "visible" && (!largeTile || largeTile === this) && !this.el.classList.contains("ended");
  }

  // The picture's drawn size in device pixels: the canvas box, narrowed to
  // the picture's shape (object-fit: contain).
  view() {
    if (!this.visible) return { visible: false };
    if (!this.box) return { visible: true };
    const ratio = window.devicePixelRatio || 1;
    const aspect = this.canvas.width / this.canvas.height;
    const width = Math.min(this.box.width, this.box.height * aspect);
    const height = Math.min(this.box.height, this.box.width / aspect);
    return { visible: true, width: Math.round(width * ratio), height: Math.round(height * ratio) };
  }

  revive() {
    clearTimeout(this.removeTimer);
    this.removeTimer = null;
    this.el.classList.remove("ended");
    if (!this.lastFrameAt) this.el.classList.add("waiting");
  }

  frame(header, jpeg) {
    this.pending = { header, jpeg };
    if (!this.decoding) this.drawPending();
  }

  async drawPending() {
    this.decoding = true;
    while (this.pending) {
      const { header, jpeg } = this.pending;
      this.pending = null;
      try {
        const bitmap = await createImageBitmap(new Blob([jpeg], { type: "image/jpeg" }));
        if (this.canvas.width !== bitmap.width || this.canvas.height !== bitmap.height) {
          const shapeChanged = this.canvas.width * bitmap.height !== this.canvas.height * bitmap.width;
          this.canvas.width = bitmap.width;
          this.canvas.height = bitmap.height;
          if (shapeChanged) views.schedule(); // the drawn size follows the picture's shape
        }
        this.canvas.getContext("2d").drawImage(bitmap, 0, 0);
        bitmap.close();
        this.drawn(header);
      } catch (error) {
        console.warn(`stream ${this.id}: frame ${header.seq} did not decode`, error);
      }
      // Credit flow: the relay sends this stream's next frame once this one
      // is done with, so a slow device is never fed a queue of old pictures.
      // The ack covers any frame dropped here for a newer one.
      socket.send(JSON.stringify({ type: "ack", stream_id: this.id, seq: header.seq }));
    }
    this.decoding = false;
  }

  drawn(header) {
    const now = Date.now();
    this.lastFrameAt = now;
    // Age counts from the lens: captured_at is the capture time on the
    // relay's clock, there once the relay knows the camera's clock. Without
    // it, from the relay's receipt; an older relay sends neither.
    const takenAt = typeof header.captured_at === "number" ? header.captured_at : header.received_at;
    this.pictureTakenAt = typeof takenAt === "number" ? takenAt : relayClock.now();
    this.el.dataset.ageFrom = typeof header.captured_at === "number" ? "capture" : "receipt";
    this.el.dataset.takenAt = String(this.pictureTakenAt);
    this.frames += 1;
    this.frameTimes.push(now);
    this.el.classList.remove("waiting", "stalled");
    this.el.dataset.frames = String(this.frames);
    this.el.dataset.seq = String(header.seq);
    if (!this.el.dataset.firstFrameAt) this.el.dataset.firstFrameAt = String(now);
    const low = header.quality === "low";
    // A smaller rendition says its scale ("1/2"); an older relay only "low".
    this.qualityEl.textContent = low ? header.rendition || "low" : "full";
    this.qualityEl.classList.toggle("low", low);
    this.el.dataset.quality = header.quality;
    this.el.dataset.rendition = header.rendition || header.quality;
    this.el.dataset.pictureWidth = String(this.canvas.width);
  }

  tick(now) {
    if (this.health.size) this.showHealth();
    while (this.frameTimes.length && now - this.frameTimes[0] > 1000) this.frameTimes.shift();
    this.fpsEl.textContent = `${this.frameTimes.length} fps`;
    if (this.el.classList.contains("ended")) return;
    // A hidden tile is sent nothing on purpose: silence there is not a stall.
    if (!this.visible) return;
    if (this.lastFrameAt) {
      // The picture's true age: since the camera took it, not since it arrived here.
      const age = Math.max(0, Math.round(relayClock.now() - this.pictureTakenAt));
      const silence = now - this.lastFrameAt;
      this.el.dataset.ageMs = String(age);
      this.ageEl.textContent = age < 1000 ? `${age} ms` : `${(age / 1000).toFixed(1)} s`;
      if (silence > STALLED_AFTER_MS) {
        this.el.classList.remove("delayed");
        this.el.classList.add("stalled");
        this.notice.textContent = `stalled: no frame for ${Math.round(silence / 1000)} s`;
      } else if (age > DELAYED_AFTER_MS) {
        this.el.classList.add("delayed");
        this.notice.textContent = `delayed: picture is ${(age / 1000).toFixed(1)} s old`;
      } else {
        this.el.classList.remove("delayed");
      }
    }
  }

  // The relay's current state of one kind; "ok" clears it.
  setHealth(message) {
    const since = Date.parse(message.since);
    if (message.state === "ok") this.health.delete(message.kind);
    else this.health.set(message.kind, { state: message.state, since: Number.isNaN(since) ? relayClock.now() : since });
    this.showHealth();
  }

  clearHealth() {
    this.health.clear();
    this.showHealth();
  }

  showHealth() {
    const problems = [...this.health.entries()].sort(([a], [b]) => a.localeCompare(b));
    const ended = this.el.classList.contains("ended");
    this.healthEl.hidden = problems.length === 0 || ended;
    this.el.classList.toggle("unhealthy", problems.length > 0 && !ended);
    if (problems.length === 0) {
      delete this.el.dataset.health;
      this.healthEl.textContent = "";
      return;
    }
    this.el.dataset.health = problems.map(([, problem]) => problem.state).join(" ");
    const now = relayClock.now();
    this.healthEl.textContent = problems.map(([kind, problem]) => describeHealth(kind, problem.state, now - problem.since)).join(" · ");
  }

  end(reason) {
    this.el.classList.remove("waiting", "stalled", "delayed");
    this.el.classList.add("ended");
    this.el.dataset.endedReason = reason;
    this.pending = null;
    // A camera the relay pulls is tried again until it answers: its tile stays, saying so,
    // and comes back to life at its next stream_started.
    if (reason === "source_lost") {
      this.notice.textContent = "camera lost: the relay keeps trying to reach it";
    } else {
      this.notice.textContent = `stream ended (${reason})`;
      this.removeTimer = setTimeout(() => removeTile(this.id), ENDED_NOTICE_MS);
    }
    this.clearHealth();
  }
}

const HEALTH_WORDS = { frozen: "picture frozen", dark: "picture dark", covered: "camera covered" };

// "picture frozen for 40 s": what a nurse reads on the tile.
function describeHealth(kind, state, elapsedMs) {
  const seconds = Math.max(0, Math.round(elapsedMs / 1000));
  const span = seconds < 120 ? `${seconds} s` : seconds < 7200 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds / 3600)} h`;
  const words = kind === "picture" && HEALTH_WORDS[state] ? HEALTH_WORDS[state]
    : kind === "uplink" && state === "delayed" ? "camera's link is slow: pictures arrive late"
    : `${kind}: ${state}`;
  return `${words} for ${span}`;
}

function addTile(id) {
  let tile = tiles.get(id);
  if (tile) {
    tile.revive();
    return tile;
  }
  tile = new Tile(id);
  tiles.set(id, tile);
  // Keep tiles in id order, so the grid does not shuffle as streams come and go.
  const after = [...tiles.keys()].filter((other) => other > id).sort()[0];
  grid.insertBefore(tile.el, after ? tiles.get(after).el : null);
  updateEmpty();
  return tile;
}

function removeTile(id) {
  const tile = tiles.get(id);
  if (!tile) return;
  clearTimeout(tile.removeTimer);
  if (largeTile === tile) toggleLarge(tile);
  sizes.unobserve(tile.canvas);
  onScreen.unobserve(tile.el);
  tile.el.remove();
  tiles.delete(id);
  views.sent.delete(id);
  updateEmpty();
}

function updateEmpty() {
  empty.hidden = tiles.size > 0;
}

function toggleLarge(tile) {
  if (largeTile && largeTile !== tile) largeTile.el.classList.remove("large");
  const large = largeTile !== tile;
  tile.el.classList.toggle("large", large);
  largeTile = large ? tile : null;
  // Its new size asks for a rendition fit for it, for this stream only;
  // the tiles under it are hidden until it closes.
  views.schedule();
}

function handleControl(message) {
  if (handleTokenMessage(message, "viewer", (text) => socket.send(text))) return;
  switch (message.type) {
    case "viewer_connected": {
      // The authoritative list after every (re)connect: rebuild from it.
      const live = new Set(message.active_streams);
      for (const id of [...tiles.keys()]) if (!live.has(id)) removeTile(id);
      for (const id of live) addTile(id).clearHealth(); // the relay says each stream's current state next
      document.body.dataset.viewerId = message.viewer_id;
      relayClock.ping((text) => socket.send(text));
      views.resendAll(); // a new connection knows nothing of what we show
      break;
    }
    case "stream_started":
      addTile(message.stream_id).clearHealth(); // a new start has fresh stages
      views.sent.delete(message.stream_id); // the relay forgot what we showed of the stream before
      views.schedule();
      break;
    case "stream_ended":
      tiles.get(message.stream_id)?.end(message.reason);
      break;
    case "stream_health":
      (tiles.get(message.stream_id) || addTile(message.stream_id)).setHealth(message);
      break;
    case "ping":
      socket.send(JSON.stringify({ type: "pong" }));
      break;
    case "pong":
      relayClock.pong(message);
      break;
    case "error":
      console.warn("server:", message.reason);
      break;
  }
}

function handleFrame(data) {
  const view = new DataView(data);
  const length = view.getUint16(0);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(data, 2, length)));
  const tile = tiles.get(header.stream_id) || addTile(header.stream_id);
  if (tile.el.classList.contains("ended")) return;
  tile.frame(header, new Uint8Array(data, 2 + length));
}

const socket = new ReconnectingSocket(socketURL("/ws/viewer?format=binary&flow=credit"), {
  beforeConnect: () => ensureSession("viewer"),
  protocols,
  onMessage(data) {
    if (typeof data === "string") handleControl(JSON.parse(data));
    else handleFrame(data);
  },
  onState(state, seconds) {
    connection.dataset.state = state;
    connection.textContent = describeState(state, seconds);
    if (state === "reconnecting") {
      // Frames stopped with the connection: do not let tiles look live.
      for (const tile of tiles.values()) tile.lastFrameAt = Math.min(tile.lastFrameAt, Date.now() - STALLED_AFTER_MS - 1);
    }
  },
});

setInterval(() => {
  const now = Date.now();
  for (const tile of tiles.values()) tile.tick(now);
}, 250);

setInterval(() => {
  if (connection.dataset.state === "live") relayClock.ping((text) => socket.send(text));
}, CLOCK_PING_MS);

updateEmpty();
socket.start();
