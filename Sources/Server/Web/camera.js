// The camera page: captures with getUserMedia, encodes JPEG with
// canvas.toBlob and sends frames to /ws/stream/{id}, never more than one
// frame in flight beyond what the socket has drained (bufferedAmount), so a
// slow network lowers the frame rate instead of building a queue.
import { ReconnectingSocket, socketURL, describeState } from "./connection.js";
import { ensureSession, handleTokenMessage, protocols } from "./auth.js";

const $ = (id) => document.getElementById(id);
const form = $("controls"), idInput = $("stream-id"), startButton = $("start"), stopButton = $("stop");
const video = $("preview"), message = $("message"), connection = $("connection");
const canvas = document.createElement("canvas");

idInput.value = localStorage.getItem("framepipe.streamId") || "";
for (const key of ["resolution", "fps", "quality", "format"]) {
  const saved = localStorage.getItem(`framepipe.${key}`);
  if (saved) $(key).value = saved;
}

let socket = null, stream = null, timer = null, encoding = false;
let sent = 0, sentTimes = [];

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

  socket = new ReconnectingSocket(socketURL(`/ws/stream/${encodeURIComponent(id)}`), {
    beforeConnect: () => ensureSession("streamer"),
    protocols,
    onMessage(data) {
      const msg = JSON.parse(data);
      if (handleTokenMessage(msg, "streamer", (text) => socket.send(text))) return;
      if (msg.type === "error") {
        $("server-error").textContent = msg.reason;
      } else if (msg.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      }
    },
    onState(state, seconds) {
      connection.dataset.state = state;
      connection.textContent = describeState(state, seconds);
    },
  });
  socket.start();
  const interval = 1000 / Math.max(1, Math.min(30, Number($("fps").value) || 15));
  timer = setInterval(captureFrame, interval);
}

function captureFrame() {
  // One frame in flight at most: skip this tick if the last one is still
  // being encoded or has not left the socket.
  if (!socket || !socket.isOpen || encoding || socket.bufferedAmount > 0 || video.readyState < 2) return;
  encoding = true;
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  const quality = Number($("quality").value) || 0.7;
  canvas.toBlob(async (blob) => {
    try {
      if (!blob || !socket || !socket.isOpen) return;
      if ($("format").value === "json") {
        const dataURL = await new Promise((resolve) => {
          const reader = new FileReader();
          reader.onload = () => resolve(reader.result);
          reader.readAsDataURL(blob);
        });
        socket.send(JSON.stringify({ type: "frame", frame: dataURL, timestamp: Date.now() }));
      } else {
        socket.send(await blob.arrayBuffer());
      }
      sent += 1;
      if (!window.firstFrameSentAt) window.firstFrameSentAt = Date.now();
      sentTimes.push(Date.now());
      $("sent-count").textContent = String(sent);
      $("frame-size").textContent = `${(blob.size / 1024).toFixed(1)} KB`;
    } finally {
      encoding = false;
    }
  }, "image/jpeg", quality);
}

function stop() {
  clearInterval(timer);
  timer = null;
  if (socket) socket.stop(1000, "stopped by user");
  socket = null;
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
