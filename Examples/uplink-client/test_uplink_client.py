"""The reference client's rule as plain calls on simulated time, and the
client against a real `framepipe serve` with a real viewer."""

import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
import websocket

from pacer import STEPS, UplinkPacer
from synthetic_camera import SyntheticCamera
from uplink_client import UplinkClient, frame_message

ROOT = Path(__file__).resolve().parents[2]


def simulate(pacer, link_bytes_per_second, seconds, frame_bytes, start=0.0):
    """Frames cross a link of the given rate one after another; acks come back when one is through."""
    now, link_free_at, acks = start, start, []
    while now < start + seconds:
        acks.sort()
        while acks and acks[0] <= now:
            pacer.acked({"type": "ack", "taken": True}, acks.pop(0))
        if pacer.can_send(now):
            pacer.capturing(now)
            size = frame_bytes(pacer.shape())
            pacer.sent(size, now)
            link_free_at = max(link_free_at, now) + size / link_bytes_per_second
            acks.append(link_free_at)
        now += 0.005
    return pacer


def jpeg_bytes(shape):
    width, height, quality = shape
    return int(width * height * (0.05 + 0.25 * (quality / 100) ** 2))  # a plausible JPEG size


def test_on_a_2_mbit_uplink_frames_take_at_most_200_ms_and_the_rate_fits_the_link():
    pacer = simulate(UplinkPacer(1280, 720, 15, quality=80), 250_000, 20, jpeg_bytes)
    frame_time = jpeg_bytes(pacer.shape()) / 250_000
    assert frame_time <= 0.2, (pacer.shape(), frame_time)
    assert pacer.step > 0, "the full 1280x720 picture does not fit 200 ms at 2 Mbit/s"
    assert pacer.fps * jpeg_bytes(pacer.shape()) <= 250_000, (pacer.fps, pacer.shape())
    assert 200_000 <= pacer.goodput <= 250_001, pacer.goodput


def test_on_a_fast_link_it_climbs_to_the_full_picture_at_the_chosen_rate():
    pacer = simulate(UplinkPacer(1280, 720, 15, quality=80), 12_500_000, 20, jpeg_bytes)
    assert pacer.step == 0 and pacer.fps == 15, (pacer.step, pacer.fps)


def test_one_frame_in_flight_at_most():
    pacer = UplinkPacer(640, 480, 30)
    assert pacer.can_send(0.0)
    pacer.capturing(0.0)
    pacer.sent(10_000, 0.0)
    assert not pacer.can_send(5.0), "the next frame waits for the ack, however long"
    pacer.acked({"type": "ack", "taken": True}, 5.0)
    assert pacer.can_send(5.0)


class AckingAtOnce:
    """A relay that acknowledges a frame before its sender's send call has even
    returned: what a loaded machine does when the reading thread runs first."""

    def __init__(self):
        self.client = None

    def send_binary(self, message):
        self.client._handle({"type": "ack", "taken": True, "delay_ms": 1})

    def send(self, text):
        pass

    def recv(self):
        time.sleep(60)  # nothing else comes; the reader just waits

    def close(self):
        pass


def test_an_ack_read_before_the_send_returns_does_not_stall_the_camera(monkeypatch):
    pacer = UplinkPacer(160, 120, 100, quality=50)
    client = UplinkClient("ws://relay.invalid/ws/stream/bed-7", SyntheticCamera(160, 120), pacer)
    relay = AckingAtOnce()
    relay.client = client
    monkeypatch.setattr(websocket, "create_connection", lambda *args, **kwargs: relay)
    # Ends on the event (five acks); the duration is only a backstop a stalled camera runs into.
    status = client.run(duration=20, stop_after_acks=5)
    assert status["acked"] == 5 and status["sent"] == 5, status


def test_demand_bounds_the_picture_and_an_unwatched_camera_sends_every_2_s_until_watched():
    pacer = simulate(UplinkPacer(1280, 720, 15, quality=80), 12_500_000, 10, jpeg_bytes)
    pacer.set_demand({"type": "demand", "watched": True, "width": 320, "height": 180, "fps": None}, 10.0)
    assert pacer.shape() == (320, 180, 50), "the smallest size that covers what viewers are sent, at its best quality"
    pacer.set_demand({"type": "demand", "watched": True, "width": 1225, "height": 689, "fps": None}, 10.0)
    pacer = simulate(pacer, 12_500_000, 10, jpeg_bytes, start=10.0)
    assert pacer.shape() == (1280, 720, 80), "a large tile: the full picture at the chosen quality"
    pacer.set_demand({"type": "demand", "watched": False, "width": None, "height": None, "fps": None}, 20.0)
    pacer.reset()
    pacer.capturing(20.0)
    pacer.sent(1000, 20.0)
    pacer.acked({"type": "ack", "taken": True}, 20.01)
    assert not pacer.can_send(21.0) and pacer.can_send(22.0)
    assert "nobody watching" in pacer.describe()
    pacer.set_demand({"type": "demand", "watched": True, "width": None, "height": None, "fps": 5}, 22.1)
    assert pacer.can_send(22.1), "a viewer appeared: at once, not at the next keep-alive"
    assert pacer.fps <= 5


def test_a_binary_frame_carries_its_capture_time_in_the_header():
    message = frame_message(b"\xff\xd8jpeg", 1732500000123)
    length = int.from_bytes(message[:2], "big")
    assert json.loads(message[2:2 + length]) == {"timestamp": 1732500000123}
    assert message[2 + length:] == b"\xff\xd8jpeg"


@pytest.fixture
def relay():
    binary = os.environ.get("FRAMEPIPE_BINARY", str(ROOT / ".build" / "debug" / "framepipe"))
    log = ROOT / ".build" / f"uplink-client-serve-{os.getpid()}.log"
    with open(log, "w") as out:
        process = subprocess.Popen([binary, "serve", "--port", "0"], cwd=ROOT, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        port = None
        while port is None and time.monotonic() < deadline and process.poll() is None:
            found = re.findall(r"dashboard=http://127\.0\.0\.1:(\d+)/", log.read_text())
            port = int(found[-1]) if found else None
            time.sleep(0.05)  # the port appears in the relay's log; nothing to await but the file
        assert port, log.read_text()
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_against_a_real_relay_every_frame_is_acked_and_viewers_see_its_capture_time(relay):
    viewer = websocket.create_connection(f"ws://127.0.0.1:{relay}/ws/viewer", timeout=10)
    assert json.loads(viewer.recv())["type"] == "viewer_connected"
    frames = []

    def watch():
        try:
            while True:
                text = viewer.recv()
                if not text:
                    return  # closed
                message = json.loads(text)
                if message.get("type") == "frame":
                    frames.append(message)
        except (websocket.WebSocketException, OSError):
            pass

    threading.Thread(target=watch, daemon=True).start()
    pacer = UplinkPacer(320, 240, 10, quality=70)
    client = UplinkClient(f"ws://127.0.0.1:{relay}/ws/stream/bed-7", SyntheticCamera(320, 240), pacer)
    # Ends on the event (twelve acks), not on a time; the duration is only a backstop.
    status = client.run(duration=60, stop_after_acks=12)
    viewer.close()
    assert status["acked"] == 12 and status["sent"] <= 13 and status["refused"] == 0, status
    assert status["watched"], "a viewer watches: told so by the relay's demand"
    with_capture = [f for f in frames if "captured_at" in f]
    assert with_capture, "once the relay knows the client's clock, frames carry captured_at"
    for frame in with_capture:
        assert frame["captured_at"] <= frame["received_at"]
        assert abs(frame["captured_at"] - frame["timestamp"]) < 1000, frame
    assert status["delay_ms"] is not None and status["delay_ms"] < 1000, status
