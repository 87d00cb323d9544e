// A WebSocket that reconnects by itself with exponential backoff and jitter,
// and reports its state (connecting / live / reconnecting in N s) so a page
// can always show it.

export function socketURL(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

export class ReconnectingSocket {
  // `beforeConnect` runs before every attempt (e.g. to make sure there is a
  // valid token); `protocols` gives the WebSocket subprotocols for an attempt.
  constructor(url, { onOpen, onMessage, onState, beforeConnect, protocols, binaryType = "arraybuffer", minDelay = 500, maxDelay = 15000 } = {}) {
    this.url = url;
    this.beforeConnect = beforeConnect || (async () => {});
    this.protocols = protocols || (() => []);
    this.onOpen = onOpen || (() => {});
    this.onMessage = onMessage || (() => {});
    this.onState = onState || (() => {});
    this.binaryType = binaryType;
    this.minDelay = minDelay;
    this.maxDelay = maxDelay;
    this.attempt = 0;
    this.stopped = false;
    this.ws = null;
    this.retryTimer = null;
    this.countdown = null;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  async connect() {
    clearTimeout(this.retryTimer);
    clearInterval(this.countdown);
    this.onState("connecting", null);
    await this.beforeConnect();
    if (this.stopped) return;
    const ws = new WebSocket(this.url, this.protocols());
    ws.binaryType = this.binaryType;
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onState("live", null);
      this.onOpen(ws);
    };
    ws.onmessage = (event) => this.onMessage(event.data, ws);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (!this.stopped) this.scheduleRetry();
    };
  }

  scheduleRetry() {
    const base = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempt);
    const delay = base * (0.7 + Math.random() * 0.6); // ±30% jitter, so clients do not return in step
    this.attempt += 1;
    const due = Date.now() + delay;
    const tick = () => this.onState("reconnecting", Math.max(0, Math.ceil((due - Date.now()) / 1000)));
    tick();
    this.countdown = setInterval(tick, 250);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  send(data) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(data);
  }

  get bufferedAmount() {
    return this.ws ? this.ws.bufferedAmount : 0;
  }

  get isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  stop(code = 1000, reason = "stopped") {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.countdown);
    if (this.ws) this.ws.close(code, reason);
    this.ws = null;
    this.onState("stopped", null);
  }
}

export function describeState(state, seconds) {
  switch (state) {
    case "live": return "live";
    case "connecting": return "connecting…";
    case "reconnecting": return `reconnecting in ${seconds} s`;
    case "stopped": return "stopped";
    default: return state;
  }
}
