"""The camera's half of freshness, for a device: the rule of docs/protocol.md
("Fresh from the lens: the streamer's side"), the same one the relay's own
camera page follows (Sources/Server/Web/uplink.js).

Keep `credits` frames in flight at most; from the relay's acks measure the
uplink's goodput (a frame's bytes over the time the link was busy with it);
pick the largest step of the ladder whose frames take at most `target_ms` on
the link, and a frame rate the link carries at 80%; follow the relay's demand
(no larger, no faster than viewers need; a frame every `idle_interval` s
while nobody watches). Pure: every time comes in as an argument (seconds)."""

STEPS = [(1.0, None), (1.0, 50), (0.75, 50), (0.5, 60), (0.5, 45), (0.375, 50), (0.25, 50), (0.25, 35)]


def _quality_weight(q):
    return 0.2 + 1.6 * (q / 100) ** 2


class UplinkPacer:
    def __init__(self, width, height, fps, quality=70, credits=1, target_ms=200, idle_interval=2.0, start_step=3, adaptive=True):
        # adaptive=False: credits and demand only, always the full picture at `fps` (a fixed encoder).
        self.adaptive = adaptive
        self.width, self.height, self.max_fps, self.base_quality = width, height, fps, quality
        self.credits, self.target_ms, self.idle_interval = credits, target_ms, idle_interval
        self.step = min(start_step, len(STEPS) - 1) if adaptive else 0
        self.fps = min(fps, 5) if adaptive else fps
        self.goodput = None  # bytes per second
        self.delay_ms = None  # capture to receipt, as the relay measured it
        self.in_flight = []  # (bytes, sent_at, step)
        self.last_ack_at = 0.0
        self.last_capture_at = float("-inf")  # the interval counts from capture, not from the send after encoding
        self.last_change_at = 0.0
        self.bytes_by_step = {}
        self.demand = {"watched": True, "width": None, "height": None, "fps": None}

    def shape(self, step=None):
        scale, quality = STEPS[self.step if step is None else step]
        even = lambda n: max(2, round(n / 2) * 2)
        return even(self.width * scale), even(self.height * scale), quality or self.base_quality

    @property
    def interval(self):
        return 1 / self.fps if self.demand["watched"] else self.idle_interval

    def can_send(self, now):
        # credits=0: no flow control at all, as streamers were before acks (for comparison).
        room = self.credits == 0 or len(self.in_flight) < self.credits
        return room and now - self.last_capture_at >= self.interval - 0.002

    def capturing(self, now):
        """A frame is being captured now (it is sent once encoded)."""
        self.last_capture_at = now

    def sent(self, size, now):
        if self.credits:
            self.in_flight.append((size, now, self.step))

    def acked(self, ack, now):
        if not self.in_flight:
            return
        size, sent_at, step = self.in_flight.pop(0)
        busy = max(0.001, now - max(sent_at, self.last_ack_at))
        self.last_ack_at = now
        sample = size / busy
        self.goodput = sample if self.goodput is None else self.goodput * 0.7 + sample * 0.3
        if isinstance(ack.get("delay_ms"), (int, float)):
            self.delay_ms = ack["delay_ms"]
        known = self.bytes_by_step.get(step)
        self.bytes_by_step[step] = size if known is None else known * 0.7 + size * 0.3
        self.adapt(now)

    def set_demand(self, demand, now):
        self.demand = {"watched": demand.get("watched") is not False, "width": demand.get("width"),
                       "height": demand.get("height"), "fps": demand.get("fps")}
        if self.demand["watched"]:
            self.last_capture_at = min(self.last_capture_at, now - self.interval)  # back to full rate at once
        self.adapt(now)

    def reset(self):
        self.in_flight = []
        self.last_ack_at = 0.0

    def estimate(self, step):
        if step in self.bytes_by_step:
            return self.bytes_by_step[step]
        if not self.bytes_by_step:
            return None
        near = min(self.bytes_by_step, key=lambda s: abs(s - step))
        (aw, ah, aq), (bw, bh, bq) = self.shape(near), self.shape(step)
        return self.bytes_by_step[near] * (bw * bh) / (aw * ah) * _quality_weight(bq) / _quality_weight(aq)

    def adapt(self, now):
        if self.goodput is None or not self.adaptive:
            return
        biggest = 0
        if self.demand["width"] or self.demand["height"]:
            for s in range(len(STEPS)):
                w, h, _ = self.shape(s)
                if w >= (self.demand["width"] or 0) and h >= (self.demand["height"] or 0):
                    biggest = s
            # Demand bounds the size, not the quality: the best quality of that size.
            while biggest > 0 and self.shape(biggest - 1)[:2] == self.shape(biggest)[:2]:
                biggest -= 1
        fits = len(STEPS) - 1
        for s in range(biggest, len(STEPS)):
            size = self.estimate(s)
            if size is not None and size * 1000 / self.goodput <= self.target_ms:
                fits = s
                break
        if fits > self.step:
            self.step, self.last_change_at = fits, now
        elif fits < self.step and now - self.last_change_at >= 2.0:
            # Bigger after two calm seconds, to the biggest step with room to spare.
            for s in range(fits, self.step):
                size = self.estimate(s)
                if size is not None and size * 1000 / self.goodput <= self.target_ms * 0.6:
                    self.step, self.last_change_at = s, now
                    break
        size = self.estimate(self.step) or 1
        carried = int(self.goodput * 0.8 / size)
        self.fps = max(1, min(self.max_fps, self.demand["fps"] or float("inf"), carried))

    def describe(self):
        if self.goodput is None:
            return "uplink: measuring"
        w, h, q = self.shape()
        pace = f"{self.fps} fps" if self.demand["watched"] else f"nobody watching: 1 frame every {self.idle_interval:g} s"
        return f"uplink {self.goodput * 8 / 1e6:.1f} Mbit/s: {w}x{h}, q {q}, {pace}"
