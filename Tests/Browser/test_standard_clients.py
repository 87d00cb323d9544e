"""MJPEG over HTTP (`GET /api/streams/{id}/mjpeg`) read by clients we did
not write: ffmpeg, VLC, GStreamer and an <img> in Chromium. The commands are
the recipes of docs/standard-clients.md."""

import json
import os
import socket as socketlib
import subprocess
import threading
import time
from pathlib import Path

import pytest
import websocket

from conftest import Relay
from pages import Dashboard, wait_until

COLORS = {"red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255), "white": (255, 255, 255)}


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """One small JPEG per color, made by ffmpeg."""
    folder = tmp_path_factory.mktemp("pictures")
    made = {}
    for name in COLORS:
        path = folder / f"{name}.jpg"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", f"color=c={name}:s=160x120",
                        "-frames:v", "1", "-q:v", "3", str(path)], check=True)
        made[name] = path.read_bytes()
    return made


@pytest.fixture
def plain_relay():
    r = Relay([])
    yield r
    r.stop()


class Camera:
    """A streamer sending JPEGs as binary messages, `fps` a second, from a thread."""

    def __init__(self, relay, stream_id, frames, fps):
        self.socket = websocket.create_connection(f"ws://127.0.0.1:{relay.port}/ws/stream/{stream_id}")
        self.frames, self.interval = frames, 1 / fps
        self.sent = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        next_at = time.monotonic()
        while self.running:
            self.socket.send_binary(self.frames[self.sent % len(self.frames)])
            self.sent += 1
            next_at += self.interval
            time.sleep(max(0, next_at - time.monotonic()))  # the camera's own frame clock

    def stop(self):
        self.running = False
        self.thread.join()
        self.socket.close()


def live(relay, stream_id):
    wait_until(f"{stream_id} is live", lambda: subprocess.run(
        ["curl", "-sf", "-o", "/dev/null", f"{relay.url}/api/streams/{stream_id}/snapshot.jpg"]).returncode == 0, timeout=10)


@pytest.mark.parametrize("strict", [False, True], ids=["probed", "mpjpeg-strict"])
def test_ffmpeg_reads_30_decodable_frames(plain_relay, pictures, tmp_path, strict):
    camera = Camera(plain_relay, "cam", list(pictures.values()), fps=30)
    try:
        live(plain_relay, "cam")
        demuxer = ["-f", "mpjpeg", "-strict_mime_boundary", "1"] if strict else []
        result = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "warning", *demuxer,
                                 "-i", f"{plain_relay.url}/api/streams/cam/mjpeg", "-frames:v", "30",
                                 str(tmp_path / "out%02d.jpg")], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        # ffmpeg says "EOI missing, emulating" once while probing any mpjpeg input,
        # its own `-f mpjpeg` output read back included: not about this stream.
        warnings = [line for line in result.stderr.splitlines() if line.strip() and "EOI missing, emulating" not in line]
        assert warnings == [], f"ffmpeg warned: {result.stderr}"
        frames = sorted(tmp_path.glob("out*.jpg"))
        assert len(frames) == 30
        for frame in frames:  # each decodes: ffprobe reads its size back
            probe = subprocess.run(["ffprobe", "-loglevel", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0",
                                    str(frame)], capture_output=True, text=True, check=True)
            assert probe.stdout.strip() == "160,120"
    finally:
        camera.stop()


def test_vlc_plays_it_with_its_mjpeg_demuxer_and_no_warning(plain_relay, pictures, tmp_path):
    camera = Camera(plain_relay, "cam", list(pictures.values()), fps=15)
    # VLC refuses to run as root; CI runs as root.
    user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    home = tmp_path / "vlc"
    home.mkdir()
    os.chmod(home, 0o777)
    vlc = None
    try:
        live(plain_relay, "cam")
        vlc = subprocess.Popen([*user, "env", f"HOME={home}", "cvlc", "--intf", "dummy", "--vout", "dummy", "--aout", "dummy",
                                "-vv", f"{plain_relay.url}/api/streams/cam/mjpeg"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        lines = []
        # VLC plays a live stream until stopped: read its log until it has played 30 parts.
        deadline = time.monotonic() + 30
        parts = 0
        for line in vlc.stdout:
            lines.append(line)
            if "mjpeg demux debug: discard MIME header: Content-Length" in line:
                parts += 1
            if (parts >= 30 and any("Stream buffering done" in seen for seen in lines)) or time.monotonic() > deadline:
                break
        log = "".join(lines)
        assert 'using demux module "mjpeg"' in log, log[-3000:]
        assert parts >= 30, log[-3000:]
        assert "Stream buffering done" in log, log[-3000:]
        demux_trouble = [line for line in lines if "mjpeg demux" in line and ("warning" in line or "error" in line)]
        assert demux_trouble == []
    finally:
        if vlc:
            vlc.kill()
            vlc.wait()
        camera.stop()


def test_gstreamer_demuxes_and_decodes_it_without_warnings(plain_relay, pictures):
    camera = Camera(plain_relay, "cam", list(pictures.values()), fps=15)
    try:
        live(plain_relay, "cam")
        result = subprocess.run(["gst-launch-1.0", "-q", "souphttpsrc", f"location={plain_relay.url}/api/streams/cam/mjpeg",
                                 "!", "multipartdemux", "!", "jpegdec", "!", "identity", "eos-after=20", "!", "fakesink"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "WARNING" not in result.stdout + result.stderr, result.stdout + result.stderr
    finally:
        camera.stop()


def test_an_img_tag_shows_each_frame_before_the_next_is_sent(plain_relay, pictures, browser):
    """The boundary goes right after each JPEG: a browser draws frame N when
    it arrives, not when N+1's part starts. Each frame is sent only once the
    page shows the one before, so a relay one frame late never gets here."""
    camera = websocket.create_connection(f"ws://127.0.0.1:{plain_relay.port}/ws/stream/cam")
    try:
        camera.send_binary(pictures["white"])
        live(plain_relay, "cam")
        browser.get(plain_relay.url + "/healthz")  # the relay's origin, so the canvas may read the picture
        browser.execute_script("""
            const img = document.createElement('img');
            img.id = 'live';
            img.src = '/api/streams/cam/mjpeg';
            document.body.appendChild(img);
            window.colorOf = () => {
                const c = document.createElement('canvas');
                c.width = 1; c.height = 1;
                const g = c.getContext('2d');
                try { g.drawImage(img, 80, 60, 1, 1, 0, 0, 1, 1); } catch (e) { return null; }
                return Array.from(g.getImageData(0, 0, 1, 1).data.slice(0, 3));
            };""")
        shown_after = []
        for name in ["red", "green", "blue", "red", "green", "blue"]:
            sent = time.monotonic()
            camera.send_binary(pictures[name])
            want = COLORS[name]

            def showing():
                color = browser.execute_script("return window.colorOf()")
                return color is not None and all(abs(a - b) < 40 for a, b in zip(color, want))

            wait_until(f"the page shows {name}", showing, timeout=10)
            shown_after.append(round((time.monotonic() - sent) * 1000))
        print(f"shown after (ms): {shown_after}")
    finally:
        camera.close()


def viewer_frames(relay, stream_id, count, timeout=15):
    """A dashboard's WebSocket viewer: the JPEGs of `stream_id`'s first `count` frames."""
    socket = websocket.create_connection(f"ws://127.0.0.1:{relay.port}/ws/viewer?format=binary", timeout=timeout)
    try:
        pictures = []
        deadline = time.monotonic() + timeout
        while len(pictures) < count and time.monotonic() < deadline:
            message = socket.recv()
            if isinstance(message, bytes):
                n = int.from_bytes(message[:2], "big")
                if f'"stream_id":"{stream_id}"' in message[2:2 + n].decode():
                    pictures.append(message[2 + n:])
        return pictures
    finally:
        socket.close()


def test_ffmpeg_feeds_a_stream_that_a_dashboard_viewer_and_an_mjpeg_client_both_see(plain_relay, tmp_path):
    feeder = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15",
                               "-c:v", "mjpeg", "-q:v", "5", "-f", "mpjpeg", f"{plain_relay.url}/api/streams/bed-12/ingest"],
                              stderr=subprocess.PIPE, text=True)
    try:
        live(plain_relay, "bed-12")
        pictures = viewer_frames(plain_relay, "bed-12", 5)
        assert len(pictures) == 5 and all(p.startswith(b"\xff\xd8") for p in pictures)
        result = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", f"{plain_relay.url}/api/streams/bed-12/mjpeg",
                                 "-frames:v", "10", str(tmp_path / "seen%02d.jpg")], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert len(list(tmp_path.glob("seen*.jpg"))) == 10
    finally:
        feeder.terminate()
        feeder.wait(timeout=10)


def test_curl_posts_one_frame_a_request(plain_relay, pictures, tmp_path):
    path = tmp_path / "frame.jpg"
    path.write_bytes(pictures["red"])
    answers = [subprocess.run(["curl", "-sS", "--data-binary", f"@{path}", f"{plain_relay.url}/api/streams/door/ingest"],
                              capture_output=True, text=True, check=True).stdout for _ in range(2)]
    assert '"seq": 0' in answers[0] and '"taken": true' in answers[0], answers
    assert '"seq": 1' in answers[1], answers
    snapshot = subprocess.run(["curl", "-sSf", f"{plain_relay.url}/api/streams/door/snapshot.jpg"], capture_output=True, check=True).stdout
    assert snapshot == pictures["red"]
    # A viewer that connects now is sent the stream's newest frame at once.
    assert viewer_frames(plain_relay, "door", 1) == [pictures["red"]]


def free_port():
    with socketlib.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FfmpegCamera:
    """ffmpeg serving MJPEG over HTTP, as an IP camera does: the recipe of
    docs/standard-clients.md ("Pulling cameras"). `-listen 1` serves one
    client and exits when it leaves, so each start serves one connection."""

    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/cam.mjpg"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10",
             "-c:v", "mjpeg", "-q:v", "5", "-f", "mpjpeg", "-listen", "1", self.url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def messages_until(socket, predicate, timeout=30):
    """The viewer's JSON messages until one matches `predicate` (which is returned)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = socket.recv()
        if isinstance(message, str):
            parsed = json.loads(message)
            if predicate(parsed):
                return parsed
    raise AssertionError("timed out waiting for a viewer message")


def pulling_config(tmp_path, camera):
    """The shipped pipelines.json, pulling `camera` as lab-cam (retries within a second)."""
    config = json.loads((Path(__file__).resolve().parents[2] / "pipelines.json").read_text())
    config["sources"] = [{"stream_id": "lab-cam", "url": camera.url, "retryMin": 0.2, "retryMax": 1, "stallTimeout": 5}]
    path = tmp_path / "pipelines.json"
    path.write_text(json.dumps(config))
    return path


def source_row(relay):
    rows = json.loads(subprocess.run(["curl", "-sSf", f"{relay.url}/api/streams"], capture_output=True, check=True).stdout)
    return next((r for r in rows if r["id"] == "lab-cam"), None)


def test_the_relay_pulls_an_mjpeg_camera_through_its_going_away_and_coming_back(tmp_path):
    camera = FfmpegCamera(free_port())
    path = pulling_config(tmp_path, camera)
    binary = os.environ.get("FRAMEPIPE_BINARY", str(Path(__file__).resolve().parents[2] / ".build" / "debug" / "framepipe"))
    checked = subprocess.run([binary, "check", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0 and f"pulls 1 camera(s): lab-cam ← {camera.url}" in checked.stdout, checked
    camera.start()
    relay = Relay(["--config", str(path)])
    viewer = None
    try:
        live(relay, "lab-cam")
        # Its pictures reach an MJPEG client and a dashboard viewer like any stream's.
        result = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", f"{relay.url}/api/streams/lab-cam/mjpeg",
                                 "-frames:v", "10", str(tmp_path / "pulled%02d.jpg")], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert len(list(tmp_path.glob("pulled*.jpg"))) == 10
        viewer = websocket.create_connection(f"ws://127.0.0.1:{relay.port}/ws/viewer", timeout=30)
        messages_until(viewer, lambda m: m["type"] == "viewer_connected" and "lab-cam" in m["active_streams"])

        camera.stop()  # the camera goes away
        ended = messages_until(viewer, lambda m: m["type"] == "stream_ended" and m["stream_id"] == "lab-cam")
        assert ended["reason"] == "source_lost"
        rows = json.loads(subprocess.run(["curl", "-sSf", f"{relay.url}/api/streams"], capture_output=True, check=True).stdout)
        row = next(r for r in rows if r["id"] == "lab-cam")
        assert row["live"] is False and row["source"]["state"] in ("lost", "connecting"), row

        camera.start()  # and comes back
        messages_until(viewer, lambda m: m["type"] == "stream_started" and m["stream_id"] == "lab-cam")
        wait_until("the camera pulled again", lambda: any(
            r["id"] == "lab-cam" and r["source"]["state"] == "pulling"
            for r in json.loads(subprocess.run(["curl", "-sSf", f"{relay.url}/api/streams"], capture_output=True, check=True).stdout)))
    finally:
        if viewer:
            viewer.close()
        relay.stop()
        camera.stop()


def test_a_lost_cameras_tile_stays_on_the_dashboard_saying_so_until_it_is_back(tmp_path, browser):
    camera = FfmpegCamera(free_port())
    camera.start()
    relay = Relay(["--config", str(pulling_config(tmp_path, camera))])
    try:
        dashboard = Dashboard(browser, relay.url)
        wait_until("the pulled camera's tile with pictures", lambda: (dashboard.tile("lab-cam") or {}).get("frames", 0) > 2)
        # Marks the tile's element: the same element after the loss proves it was never removed.
        browser.execute_script("document.querySelector('.tile[data-stream-id=\"lab-cam\"]').dataset.mark = 'kept'")
        camera.stop()
        wait_until("the lost camera told", lambda: (dashboard.tile("lab-cam") or {}).get("notice") == "camera lost: the relay keeps trying to reach it")
        # Past the time an ended tile is kept (2.5 s), counted by the relay's own retries:
        # waits of 0.2, 0.4, 0.8, 1, 1 s before the 6th attempt.
        wait_until("six attempts", lambda: (source_row(relay) or {}).get("source", {}).get("attempts", 0) >= 6, timeout=20)
        tile = dashboard.tile("lab-cam")
        assert tile is not None and "ended" in tile["classes"], tile
        camera.start()
        frames = tile["frames"]
        wait_until("pictures again", lambda: (dashboard.tile("lab-cam") or {}).get("frames", 0) > frames + 2)
        assert "ended" not in dashboard.tile("lab-cam")["classes"]
        assert browser.execute_script("return document.querySelector('.tile[data-stream-id=\"lab-cam\"]').dataset.mark") == "kept"
    finally:
        relay.stop()
        camera.stop()
