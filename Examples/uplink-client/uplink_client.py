#!/usr/bin/env python3
"""A reference streamer for device integrators: sends JPEG frames to a
framepipe relay the way its own camera page does, so a camera on a slow
uplink shows viewers fresh pictures instead of seconds-old ones.

    python3 uplink_client.py ws://127.0.0.1:8080/ws/stream/bed-12 --fps 10

- connects with `?flow=credit` and keeps one frame in flight (`UplinkPacer`);
- stamps each binary frame with its capture time in the small JSON header
  (2-byte length, `{"timestamp": ms}`, then the JPEG);
- answers the relay's clock pings with its own time, so the relay can put
  capture times on its clock (`captured_at`);
- follows the relay's `demand`.
It prints one JSON line a second: what it sends and what it measured.
Needs `websocket-client` (pip) and libturbojpeg for its test picture."""

import argparse
import json
import sys
import threading
import time

import websocket

from pacer import UplinkPacer
from synthetic_camera import SyntheticCamera


def frame_message(jpeg, captured_at_ms):
    header = json.dumps({"timestamp": captured_at_ms}, separators=(",", ":")).encode()
    return len(header).to_bytes(2, "big") + header + jpeg


class UplinkClient:
    def __init__(self, url, camera, pacer, token=None):
        query = [] if pacer.credits == 0 else ["flow=credit"]
        query += [f"token={token}"] if token else []
        self.url = url + ("&" if "?" in url else "?") + "&".join(query) if query else url
        self.camera, self.pacer = camera, pacer
        self.lock = threading.Lock()
        # websocket-client's sends are not safe from two threads at once: pongs and frames would interleave.
        self.send_lock = threading.Lock()
        self.sent = self.acked = self.refused = 0
        self.socket = None

    def _read(self):
        while True:
            try:
                text = self.socket.recv()
            except (websocket.WebSocketException, OSError):
                return
            if text == "":
                return  # the relay closed the connection
            if isinstance(text, str):
                self._handle(json.loads(text))

    def _handle(self, message):
        now = time.monotonic()
        kind = message.get("type")
        with self.lock:
            if kind == "ack":
                self.pacer.acked(message, now)
                self.acked += 1
                if not message.get("taken"):
                    self.refused += 1
                    print(json.dumps({"refused": message.get("reason")}), file=sys.stderr)
            elif kind == "demand":
                self.pacer.set_demand(message, now)
        if kind == "ping":
            answer = {"type": "pong"}
            if isinstance(message.get("server_time"), (int, float)):
                answer.update(server_time=message["server_time"], client_time=int(time.time() * 1000))
            with self.send_lock:
                self.socket.send(json.dumps(answer))

    def run(self, duration, stop_after_acks=None):
        """Streams for `duration` s, or until `stop_after_acks` frames were acknowledged."""
        self.socket = websocket.create_connection(self.url, timeout=10)
        reader = threading.Thread(target=self._read, daemon=True)
        reader.start()
        start = last_report = time.monotonic()
        try:
            while time.monotonic() - start < duration and reader.is_alive():
                if stop_after_acks is not None and self.acked >= stop_after_acks:
                    break
                now = time.monotonic()
                with self.lock:
                    ready = self.pacer.can_send(now)
                    width, height, quality = self.pacer.shape()
                if ready:
                    with self.lock:
                        self.pacer.capturing(now)
                    captured_at = int(time.time() * 1000)
                    message = frame_message(self.camera.capture(width, height, quality), captured_at)
                    # In flight before it is sent: the relay's ack can be read by the other
                    # thread before this one runs again, and an ack for a frame not yet
                    # counted would leave that frame "in flight" for ever, and the camera stuck.
                    with self.lock:
                        self.pacer.sent(len(message), time.monotonic())
                        self.sent += 1
                    with self.send_lock:
                        self.socket.send_binary(message)
                if now - last_report >= 1:
                    last_report = now
                    print(json.dumps(self.status()), flush=True)
                time.sleep(0.003)
        finally:
            self.socket.close()
        return self.status()

    def status(self):
        with self.lock:
            width, height, quality = self.pacer.shape()
            return {"sent": self.sent, "acked": self.acked, "refused": self.refused, "width": width, "height": height,
                    "quality": quality, "fps": self.pacer.fps, "watched": self.pacer.demand["watched"],
                    "goodput_bps": None if self.pacer.goodput is None else round(self.pacer.goodput * 8),
                    "delay_ms": self.pacer.delay_ms, "says": self.pacer.describe()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="ws://HOST:PORT/ws/stream/STREAM_ID")
    parser.add_argument("--fps", type=float, default=10)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--quality", type=int, default=80)
    parser.add_argument("--detail", type=float, default=0.5, help="share of the test picture that is fine detail (bigger frames)")
    parser.add_argument("--credits", type=int, default=1, help="frames in flight at most; 0: no flow control (as before acks)")
    parser.add_argument("--fixed", action="store_true", help="never change size, quality or rate: credits and demand only")
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--token", help="a streamer token, when the relay has auth on")
    args = parser.parse_args()
    camera = SyntheticCamera(args.width, args.height, detail=args.detail)
    pacer = UplinkPacer(args.width, args.height, args.fps, quality=args.quality, credits=args.credits, adaptive=not args.fixed)
    final = UplinkClient(args.url, camera, pacer, token=args.token).run(args.duration)
    print(json.dumps({"final": final}), flush=True)


if __name__ == "__main__":
    main()
