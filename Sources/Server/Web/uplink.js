// The camera's half of freshness: how big, how good and how often to send
// so that a frame's time on the uplink stays well under a second, and so
// that nothing is sent that nobody watches.
//
// The relay answers each frame with an ack (the socket opened with
// ?flow=credit). At most `credits` frames are unacknowledged, so frames wait
// here, where a newer capture replaces them, never in a send buffer on a slow
// Wi-Fi. From the acks: goodput (a frame's bytes over the time the link was
// busy with it) and round trip. From them, a step of the ladder below (size
// and JPEG quality) whose frames take at most `targetMs` on the link, and a
// frame rate the link carries with room to spare. The relay's `demand` bounds
// both: the largest picture any viewer is sent, the highest rate, and whether
// anyone watches at all (if not: one frame every `idleIntervalMs`, so a new
// viewer's tile and picture health still have a recent picture).
//
// docs/protocol.md ("Fresh from the lens") states the rule for device clients.

export const STEPS = [
  { scale: 1, quality: null }, // the chosen size and quality
  { scale: 1, quality: 0.5 },
  { scale: 0.75, quality: 0.5 },
  { scale: 0.5, quality: 0.6 },
  { scale: 0.5, quality: 0.45 },
  { scale: 0.375, quality: 0.5 },
  { scale: 0.25, quality: 0.5 },
  { scale: 0.25, quality: 0.35 },
];

// How JPEG bytes grow with quality, roughly: only ratios between steps are used.
const qualityWeight = (q) => 0.2 + 1.6 * q * q;

export class UplinkPacer {
  constructor({ width, height, fps, quality, credits = 1, targetMs = 200, idleIntervalMs = 2000, startStep = 3 }) {
    Object.assign(this, { width, height, maxFps: fps, baseQuality: quality, credits, targetMs, idleIntervalMs });
    this.step = Math.min(startStep, STEPS.length - 1);
    this.fps = Math.min(fps, 5);
    this.goodput = null; // bytes per second
    this.roundTrip = null; // ms, the smallest lately
    this.delayMs = null; // capture to receipt, as the relay measured it
    this.inFlight = [];
    this.lastAckAt = 0;
    this.lastCaptureAt = -Infinity; // the interval counts from capture, not from the send after encoding
    this.lastChangeAt = 0;
    this.bytesByStep = new Map();
    this.demand = { watched: true, width: null, height: null, fps: null };
  }

  // The picture size and quality of a step.
  shape(step = this.step) {
    const { scale, quality } = STEPS[step];
    const even = (n) => Math.max(2, Math.round(n / 2) * 2);
    return { width: even(this.width * scale), height: even(this.height * scale), quality: quality ?? this.baseQuality };
  }

  // The ms between frames: the chosen rate while watched, a keep-alive picture otherwise.
  get intervalMs() {
    return this.demand.watched ? 1000 / this.fps : this.idleIntervalMs;
  }

  // Frames allowed in flight: `credits`, and one more while a frame takes under
  // a quarter of the target on the link, so encoding and the ack's way back
  // overlap the next frame (one in flight caps a fast link at 1 / (encode +
  // round trip), about 12 fps here) without a queue worth the name.
  get allowedInFlight() {
    const bytes = this.goodput === null ? null : this.estimate(this.step);
    return bytes !== null && (bytes * 1000) / this.goodput <= this.targetMs / 4 ? this.credits + 1 : this.credits;
  }

  canSend(now) {
    return this.inFlight.length < this.allowedInFlight && now - this.lastCaptureAt >= this.intervalMs - 2;
  }

  // A frame is being captured now (it is sent once encoded).
  capturing(now) {
    this.lastCaptureAt = now;
  }

  sent(bytes, now) {
    this.inFlight.push({ bytes, at: now, step: this.step });
    if (this.sentSinceWatched && this.sentSinceWatched.length < 3) this.sentSinceWatched.push(now - this.watchedAt);
  }

  // The relay's ack of the oldest frame in flight.
  acked(ack, now) {
    const frame = this.inFlight.shift();
    if (!frame) return;
    const busy = Math.max(1, now - Math.max(frame.at, this.lastAckAt));
    this.lastAckAt = now;
    const sample = (frame.bytes * 1000) / busy;
    this.goodput = this.goodput === null ? sample : this.goodput * 0.7 + sample * 0.3;
    const rtt = now - frame.at;
    this.roundTrip = this.roundTrip === null ? rtt : Math.min(rtt, this.roundTrip * 0.95 + rtt * 0.05);
    if (typeof ack.delay_ms === "number") this.delayMs = ack.delay_ms;
    const known = this.bytesByStep.get(frame.step);
    this.bytesByStep.set(frame.step, known ? known * 0.7 + frame.bytes * 0.3 : frame.bytes);
    this.adapt(now);
  }

  setDemand(demand, now) {
    const was = this.demand.watched;
    this.demand = { watched: demand.watched !== false, width: demand.width ?? null, height: demand.height ?? null, fps: demand.fps ?? null };
    // When the frames after a viewer appeared went out (ms after it was told), for the benchmark.
    if (this.demand.watched && !was) { this.watchedAt = now; this.sentSinceWatched = []; }
    // Back to full rate at once when someone starts watching.
    if (this.demand.watched) this.lastCaptureAt = Math.min(this.lastCaptureAt, now - this.intervalMs);
    this.adapt(now);
  }

  // The socket reconnected: nothing is in flight any more.
  reset() {
    this.inFlight = [];
    this.lastAckAt = 0;
  }

  // Bytes a frame of `step` costs: measured, else scaled from the nearest measured one.
  estimate(step) {
    if (this.bytesByStep.has(step)) return this.bytesByStep.get(step);
    let from = null;
    for (const [known] of this.bytesByStep) if (from === null || Math.abs(known - step) < Math.abs(from - step)) from = known;
    if (from === null) return null;
    const a = this.shape(from), b = this.shape(step);
    return this.bytesByStep.get(from) * ((b.width * b.height) / (a.width * a.height)) * (qualityWeight(b.quality) / qualityWeight(a.quality));
  }

  // The largest step whose frames fit the target time on the link, within
  // what viewers need; the rate the link carries at 80%, within the chosen one.
  adapt(now) {
    if (this.goodput === null) return;
    // The biggest picture worth sending: the smallest step that still covers
    // the largest one a viewer is sent (all of them when no viewer said).
    let biggest = 0;
    if (this.demand.width || this.demand.height) {
      for (let s = 0; s < STEPS.length; s++) {
        const shape = this.shape(s);
        if (shape.width >= (this.demand.width || 0) && shape.height >= (this.demand.height || 0)) biggest = s;
      }
      // Demand bounds the size, not the quality: the best quality of that size.
      const same = (a, b) => this.shape(a).width === this.shape(b).width && this.shape(a).height === this.shape(b).height;
      while (biggest > 0 && same(biggest - 1, biggest)) biggest -= 1;
    }
    let fits = STEPS.length - 1;
    for (let s = biggest; s < STEPS.length; s++) {
      const bytes = this.estimate(s);
      if (bytes !== null && (bytes * 1000) / this.goodput <= this.targetMs) { fits = s; break; }
    }
    if (fits > this.step) {
      // Smaller at once: the link or the viewers asked for it.
      this.step = fits;
      this.lastChangeAt = now;
    } else if (fits < this.step && now - this.lastChangeAt >= 2000) {
      // Bigger after two calm seconds, to the biggest step with room to spare
      // (its frames estimated at 60% of the target), so a try never builds a
      // queue; an estimate that was wrong costs one frame, then it steps down.
      for (let s = fits; s < this.step; s++) {
        const bytes = this.estimate(s);
        if (bytes !== null && (bytes * 1000) / this.goodput <= this.targetMs * 0.6) {
          this.step = s;
          this.lastChangeAt = now;
          break;
        }
      }
    }
    const bytes = this.estimate(this.step) || 1;
    const carried = Math.floor((this.goodput * 0.8) / bytes);
    this.fps = Math.max(1, Math.min(this.maxFps, this.demand.fps || Infinity, carried));
  }

  describe() {
    if (this.goodput === null) return "uplink: measuring…";
    const shape = this.shape();
    const rate = (this.goodput * 8) / 1e6;
    const what = `${shape.width}×${shape.height}, q ${shape.quality.toFixed(2).replace(/0$/, "")}`;
    const pace = this.demand.watched ? `${this.fps} fps` : `nobody watching: 1 frame every ${this.idleIntervalMs / 1000} s`;
    return `uplink ${rate < 10 ? rate.toFixed(1) : Math.round(rate)} Mbit/s: ${what}, ${pace}`;
  }
}
