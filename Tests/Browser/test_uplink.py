"""Fresh from the lens: the camera page behind a real slow uplink, and a
camera that sends only what someone watches.

The shaped test runs the relay inside a network namespace joined to this
host by a veth pair, and shapes the host's end (everything the browser sends
to the relay) to 1 Mbit/s with tc tbf: the camera page's uplink, as on a weak
ward Wi-Fi. The dashboard's downlink (namespace to host) is not shaped. Real
time is the point here (the link's rate is), so bounds come from the link:
a frame of the smallest step the page may choose takes ~100 ms at 1 Mbit/s,
and the page keeps one frame in flight, so pictures a second old mean a queue
somewhere; without flow control they were 7 s old. The figures are printed;
`Benchmarks/run-slow-uplink.sh` runs the same with longer windows for
BENCHMARKS.md."""

import os
import random
import shutil
import subprocess
import time

import pytest

from conftest import Relay, make_browser
from pages import Camera, Dashboard, wait_until

MEASURE_SECONDS = float(os.environ.get("UPLINK_MEASURE_SECONDS", "8"))
LARGE_TILE = os.environ.get("UPLINK_LARGE_TILE") == "1"  # Benchmarks/run-slow-uplink.sh's large-tile rows


def run(*args):
    subprocess.run(args, check=True, capture_output=True)


class ShapedUplink:
    """A namespace holding the relay, reached through a veth pair whose host
    end sends at `rate`. Removed even when the test fails."""

    def __init__(self, rate):
        tag = format(random.getrandbits(32), "x")
        self.namespace = f"fp-up-{tag}"
        self.host_if, ns_if = f"fpu{tag[:8]}h", f"fpu{tag[:8]}n"
        subnet = random.randint(1, 250)
        self.host_address, self.relay_address = f"10.252.{subnet}.1", f"10.252.{subnet}.2"
        try:
            run("ip", "netns", "add", self.namespace)
            run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", ns_if)
            run("ip", "link", "set", ns_if, "netns", self.namespace)
            run("ip", "addr", "add", f"{self.host_address}/30", "dev", self.host_if)
            run("ip", "link", "set", self.host_if, "up")
            run("ip", "netns", "exec", self.namespace, "ip", "addr", "add", f"{self.relay_address}/30", "dev", ns_if)
            run("ip", "netns", "exec", self.namespace, "ip", "link", "set", ns_if, "up")
            run("ip", "netns", "exec", self.namespace, "ip", "link", "set", "lo", "up")
            run("tc", "qdisc", "add", "dev", self.host_if, "root", "tbf", "rate", rate, "burst", "16kb", "latency", "200ms")
        except Exception:
            self.remove()
            raise

    def remove(self):
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)


def shaping_unavailable():
    if os.geteuid() != 0:
        return "needs root for ip netns and tc (CI runs as root)"
    if not (shutil.which("ip") and shutil.which("tc")):
        return "ip and tc are missing (Debian: iproute2)"
    return None


@pytest.fixture
def shaped_relay():
    link = ShapedUplink(os.environ.get("UPLINK_RATE", "1mbit"))
    relay = None
    try:
        relay = Relay([], host=link.relay_address, prefix=["ip", "netns", "exec", link.namespace])
        yield relay
    finally:
        if relay:
            relay.stop()
        link.remove()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


@pytest.mark.skipif(shaping_unavailable() is not None, reason=str(shaping_unavailable()))
def test_camera_behind_a_1_mbit_uplink_shows_fresh_pictures_with_their_true_age(shaped_relay):
    origin = shaped_relay.url
    browser = make_browser(extra_args=[f"--unsafely-treat-insecure-origin-as-secure={origin}"])
    try:
        dashboard = Dashboard(browser, origin)
        camera = Camera(browser, origin, "bed-12", fps=15, resolution="1280x720").start()
        wait_until("tile with frames", lambda: (dashboard.tile("bed-12") or {}).get("frames", 0) > 3, timeout=20)
        if LARGE_TILE:
            # Opened large (~1370 device pixels): viewers then want the camera's full picture.
            dashboard.focus()
            browser.execute_script("document.querySelector('.tile').click()")
        # The page measures its uplink from the relay's acks and settles on a step.
        camera.focus()
        wait_until("the page says what it does", lambda: "Mbit/s" in camera.text("uplink"), timeout=10)
        dashboard.focus()
        wait_until("the dashboard's clock offset", lambda: browser.execute_script("return document.body.dataset.clockOffsetMs"))
        wait_until("ages counted from capture", lambda: browser.execute_script(
            "return document.querySelector('.tile').dataset.ageFrom === 'capture'"), timeout=10)
        time.sleep(4)  # settling: the page's first steps are measurements (real time is the point here)
        true_ages, shown_ages, frames = [], [], []
        start = time.monotonic()
        first_frames = dashboard.tile("bed-12")["frames"]
        while time.monotonic() - start < MEASURE_SECONDS:
            # Both read in one script: the true age from the frame's capture time on
            # this machine's one clock, and the age the tile shows.
            true_age, shown = browser.execute_script(
                "const t = document.querySelector('.tile'); return [Date.now() - Number(t.dataset.takenAt), Number(t.dataset.ageMs)]")
            true_ages.append(true_age)
            shown_ages.append(shown)
            time.sleep(0.1)  # the sampling interval of a measurement over real time, not a wait for an event
        fps = (dashboard.tile("bed-12")["frames"] - first_frames) / (time.monotonic() - start)
        camera.focus()
        uplink = camera.text("uplink")
        state = browser.execute_script("return window.framepipeUplink()")
        differences = [abs(a - b) for a, b in zip(true_ages, shown_ages)]
        figures = {"fps": round(fps, 1), "age_p50_ms": percentile(true_ages, 50), "age_p95_ms": percentile(true_ages, 95),
                   "shown_vs_true_p95_ms": percentile(differences, 95), "uplink": uplink}
        print("UPLINK", figures)
        if not LARGE_TILE:
            # The dashboard's small tile asked for ~480 px: the camera sends no larger (demand).
            assert state["demand"]["width"] and state["width"] <= 482, (state, figures)
        assert "Mbit/s" in uplink and "fps" in uplink, uplink
        # Fresh: the bound is far from the 7 s of a queue and above a frame's own time on the link.
        assert percentile(true_ages, 95) < 1500, figures
        assert fps >= 3, figures
        # The tile's age is the true one (it counts from capture, not from the relay's receipt).
        assert percentile(differences, 95) < 300, figures
    finally:
        browser.quit()


def test_a_camera_nobody_watches_sends_a_picture_now_and_then_and_full_rate_once_watched(relay, browser):
    camera = Camera(browser, relay.url, "bed-3", fps=15, new_tab=False).start()
    wait_until("told nobody watches", lambda: browser.execute_script(
        "const u = window.framepipeUplink(); return u && u.demand.watched === false"), timeout=10)
    wait_until("the page says so", lambda: "nobody watching" in camera.text("uplink"), timeout=10)
    # Two keep-alive pictures, awaited as they are sent: at least the rule's 2 s apart
    # (a loaded machine can only make them later), where a watched camera sends 15 a second.
    sent_before = int(camera.text("sent-count"))
    wait_until("a keep-alive picture", lambda: int(camera.text("sent-count")) > sent_before, timeout=5)
    first_at = time.monotonic()
    wait_until("the next keep-alive picture", lambda: int(camera.text("sent-count")) > sent_before + 1, timeout=5)
    gap = time.monotonic() - first_at
    assert gap >= 1.5, f"keep-alive pictures {gap:.2f} s apart while unwatched"
    # A dashboard opens: the camera hears of it and goes back to full rate at once.
    dashboard = dashboard_in_new_window(browser, relay.url)
    camera.focus()
    wait_until("told it is watched", lambda: browser.execute_script("return window.framepipeUplink().demand.watched"), timeout=2)
    sent_at_watch = int(camera.text("sent-count"))
    wait_until("frames at the chosen rate again", lambda: int(camera.text("sent-count")) - sent_at_watch >= 5, timeout=3)
    wait_until("the tile moves", lambda: (dashboard.tile("bed-3") or {}).get("frames", 0) >= 3, timeout=5)


def dashboard_in_new_window(browser, base):
    browser.switch_to.new_window("window")
    return Dashboard(browser, base)
