// The camera page: captures with getUserMedia, encodes JPEG with
// canvas.toBlob and sends frames to /ws/stream/{id}?flow=credit, each
// stamped with its capture time. The relay acks every frame; `UplinkPacer`
// keeps one frame in flight and picks size, quality and rate from the acks
// and from the relay's demand, so a slow uplink gets smaller, fresher
// pictures instead of a queue of stale ones (a send buffer alone held
// seconds of frames on a 1 Mbit/s link).
import { ReconnectingSocket, socketURL, describeState } from "./connection.js";
import { ensureSession, handleTokenMessage, protocols } from "./auth.js";
import { UplinkPacer } from "./uplink.js";

const $ = (id) => document.getElementById(id);
const form = $("controls"), idInput = $("stream-id"), startButton = $("start"), stopButton = $("stop");
const video = $("preview"), message = $("message"), connection = $("connection");
const canvas = document.createElement("canvas");

idInput.value = localStorage.getItem("framepipe.streamId") || "";
for (const key of ["resolution", "fps", "quality", "format"]) {
  const saved = localStorage.getItem(`framepipe.${key}`);
  if (saved) $(key).value = saved;
}

let socket = null, stream = null, timer = null, encoding = false, pacer = null;
let sent = 0, sentTimes = [], bytesSent = 0;
// For tests and the curious: what the pacer decided, as the page shows it.
window.framepipeUplink = () => pacer && { step: pacer.step, ...pacer.shape(), fps: pacer.fps, goodput: pacer.goodput, bytesSent, sent,
  roundTrip: pacer.roundTrip, delayMs: pacer.delayMs, demand: pacer.demand, inFlight: pacer.inFlight.length,
  sentSinceWatched: pacer.sentSinceWatched || null };

function show(kind, text) {
  message.className = `message ${kind}`;
  message.textContent = text;
}

function clearMessage() {
  message.className = "message";
  message.textContent = "";
}

function explainCameraError(error) {
  if (!window.isSecureContext) {
    return "Cameras are only available on secure origins. Open this page over https " +
      "(run framepipe serve with --tls-cert and --tls-key) or on localhost.";
  }
  switch (error && error.name) {
    case "NotAllowedError":
      return "Camera access was denied. Allow the camera for this site in the browser's settings, then press Start again.";
    case "NotFoundError": case "OverconstrainedError":
      return "No camera matches: pick another resolution or connect a camera.";
    case "NotReadableError":
      return "The camera is in use by another program or tab.";
    default:
      return `The camera could not be started: ${error && error.message ? error.message : error}`;
  }
}

async function start(event) {
  event.preventDefault();
  clearMessage();
  const id = idInput.value.trim();
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(id)) {
    show("error", "A stream id is 1–64 letters, digits, '.', '_' or '-'.");
    return;
  }
  localStorage.setItem("framepipe.streamId", id);
  for (const key of ["resolution", "fps", "quality", "format"]) localStorage.setItem(`framepipe.${key}`, $(key).value);
  if (!window.isSecureContext || !navigator.mediaDevices) {
    show("error", explainCameraError(null));
    return;
  }
  const [width, height] = $("resolution").value.split("x").map(Number);
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: width }, height: { ideal: height } }, audio: false });
  } catch (error) {
    show("error", explainCameraError(error));
    return;
  }
  video.srcObject = stream;
  await video.play().catch(() => {});
  canvas.width = width;
  canvas.height = height;
  startButton.disabled = true;
  stopButton.disabled = false;
  for (const el of form.querySelectorAll("input, select")) el.disabled = true;

  const fps = Math.max(1, Math.min(30, Number($("fps").value) || 15));
  pacer = new UplinkPacer({ width, height, fps, quality: Number($("quality").value) || 0.7 });
  socket = new ReconnectingSocket(socketURL(`/ws/stream/${encodeURIComponent(id)}?flow=credit`), {
    beforeConnect: () => ensureSession("streamer"),
    protocols,
    onOpen() { pacer.reset(); },
    onMessage(data) {
      const msg = JSON.parse(data);
      if (handleTokenMessage(msg, "streamer", (text) => socket.send(text))) return;
      if (msg.type === "ack") {
        pacer.acked(msg, performance.now());
        if (!msg.taken) $("server-error").textContent = `frame not taken: ${msg.reason}`;
        showUplink();
      } else if (msg.type === "demand") {
        pacer.setDemand(msg, performance.now());
        showUplink();
      } else if (msg.type === "error") {
        $("server-error").textContent = msg.reason;
      } else if (msg.type === "ping") {
        // Echo the relay's time beside ours: the relay learns our clock's
        // offset and puts every frame's capture time on its own clock.
        socket.send(JSON.stringify(typeof msg.server_time === "number"
          ? { type: "pong", server_time: msg.server_time, client_time: Date.now() } : { type: "pong" }));
      }
    },
    onState(state, seconds) {
      connection.dataset.state = state;
      connection.textContent = describeState(state, seconds);
    },
  });
  socket.start();
  // The pacer decides when; this only looks often enough to keep 30 fps.
  timer = setInterval(captureFrame, 10);
}

function showUplink() {
  $("uplink").textContent = pacer.describe();
}

function captureFrame() {
  const now = performance.now();
  if (!socket || !socket.isOpen || encoding || video.readyState < 2 || !pacer.canSend(now)) return;
  encoding = true;
  pacer.capturing(now);
  const shape = pacer.shape();
  if (canvas.width !== shape.width || canvas.height !== shape.height) {
    canvas.width = shape.width;
    canvas.height = shape.height;
  }
  const capturedAt = Date.now();
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  canvas.toBlob(async (blob) => {
    try {
      if (!blob || !socket || !socket.isOpen) return;
      let bytes;
      if ($("format").value === "json") {
        const dataURL = await new Promise((resolve) => {
          const reader = new FileReader();
          reader.onload = () => resolve(reader.result);
          reader.readAsDataURL(blob);
        });
        const text = JSON.stringify({ type: "frame", frame: dataURL, timestamp: capturedAt });
        socket.send(text);
        bytes = text.length;
      } else {
        // The capture time travels in a small header before the JPEG (docs/protocol.md).
        const header = new TextEncoder().encode(JSON.stringify({ timestamp: capturedAt }));
        const message = new Uint8Array(2 + header.length + blob.size);
        message[0] = header.length >> 8;
        message[1] = header.length & 0xff;
        message.set(header, 2);
        message.set(new Uint8Array(await blob.arrayBuffer()), 2 + header.length);
        socket.send(message);
        bytes = message.length;
      }
      pacer.sent(bytes, performance.now());
      bytesSent += bytes;
      sent += 1;
      if (!window.firstFrameSentAt) window.firstFrameSentAt = Date.now();
      sentTimes.push(Date.now());
      $("sent-count").textContent = String(sent);
      $("frame-size").textContent = `${(blob.size / 1024).toFixed(1)} KB`;
    } finally {
      encoding = false;
    }
  }, "image/jpeg", shape.quality);
}

function stop() {
  clearInterval(timer);
  timer = null;
  if (socket) socket.stop(1000, "stopped by user");
  socket = null;
  pacer = null;
  $("uplink").textContent = "–";
  if (stream) for (const track of stream.getTracks()) track.stop();
  stream = null;
  video.srcObject = null;
  window.firstFrameSentAt = undefined;
  startButton.disabled = false;
  stopButton.disabled = true;
  for (const el of form.querySelectorAll("input, select")) el.disabled = false;
}

setInterval(() => {
  const now = Date.now();
  sentTimes = sentTimes.filter((t) => now - t <= 1000);
  $("sent-fps").textContent = `${sentTimes.length} fps`;
}, 250);

form.addEventListener("submit", start);
stopButton.addEventListener("click", stop);
if (!window.isSecureContext) show("info", explainCameraError(null));
