"""A tile says plainly when a camera's picture is useless (frozen, dark,
covered) and keeps showing the picture under it."""

import json

import pytest

from conftest import Relay
from pages import Dashboard, wait_until

# The standard stages, with picture-health told to decide in a second or two.
PIPELINES = {
    "default": "watched",
    "pipelines": {"watched": {"stages": [
        {"stage": "size-limit"}, {"stage": "base64-validation"}, {"stage": "decode-check"},
        {"stage": "picture-health", "interval": 0, "frozenAfter": 2, "darkAfter": 2, "recoverAfter": 1},
        {"stage": "fan-out"}]}},
}

# A camera in a page of its own: draws `level` grey with noise on a canvas,
# encodes it once (frozen) or afresh each frame (live), and sends the JPEG.
STREAMER = """
const [url, mode, level] = arguments;
const canvas = document.createElement('canvas'); canvas.width = 320; canvas.height = 240;
const g = canvas.getContext('2d');
// A moving checkerboard (detail, so not "covered") with noise; a dim one for a dark room.
const amplitude = level < 32 ? 6 : 80;
let t = 0;
function picture() {
  const image = g.createImageData(320, 240);
  t += 1;
  for (let i = 0; i < image.data.length; i += 4) {
    const x = (i / 4) % 320, y = Math.floor(i / 4 / 320);
    const checker = (((x + 3 * t) >> 5) + (y >> 5)) % 2 ? amplitude / 2 : -amplitude / 2;
    const v = Math.max(0, Math.min(255, Math.round(level + checker + (Math.random() - 0.5) * amplitude / 2)));
    image.data[i] = image.data[i + 1] = image.data[i + 2] = v; image.data[i + 3] = 255;
  }
  g.putImageData(image, 0, 0);
  return new Promise((done) => canvas.toBlob((b) => b.arrayBuffer().then(done), 'image/jpeg', 0.8));
}
window.streamer && window.streamer.stop();
const ws = new WebSocket(url); ws.binaryType = 'arraybuffer';
let still = null, timer = null;
ws.onopen = () => { timer = setInterval(async () => {
  const bytes = mode === 'frozen' ? (still ||= await picture()) : await picture();
  if (ws.readyState === 1) ws.send(bytes);
}, 100); };
window.streamer = { stop() { clearInterval(timer); ws.close(); } };
"""


@pytest.fixture
def watched_relay(tmp_path):
    path = tmp_path / "pipelines.json"
    path.write_text(json.dumps(PIPELINES))
    r = Relay(["--config", str(path)])
    yield r
    r.stop()


def health(dashboard, stream_id):
    dashboard.focus()
    return dashboard.driver.execute_script(
        "const t = [...document.querySelectorAll('.tile')].find(t => t.dataset.streamId === arguments[0]);"
        "if (!t) return null; const h = t.querySelector('.health');"
        "return {state: t.dataset.health || null, text: h.hidden ? '' : h.textContent, classes: t.className,"
        " frames: Number(t.dataset.frames || 0), shown: getComputedStyle(h).display !== 'none'};", stream_id)


def stream(browser, relay, stream_id, mode, level=128):
    browser.switch_to.new_window("window")
    browser.get(relay.url + "/stream")
    browser.execute_script(STREAMER, f"ws://127.0.0.1:{relay.port}/ws/stream/{stream_id}", mode, level)
    return browser.current_window_handle


def test_a_frozen_camera_is_said_on_its_tile_and_the_picture_stays(watched_relay, browser):
    dashboard = Dashboard(browser, watched_relay.url)
    camera = stream(browser, watched_relay, "bed-7", "frozen")
    frozen = wait_until("frozen shown", lambda: (h := health(dashboard, "bed-7")) and h["state"] == "frozen" and h, timeout=15)
    assert frozen["text"].startswith("picture frozen for ") and frozen["text"].endswith(" s"), frozen
    assert frozen["shown"] and "unhealthy" in frozen["classes"] and "stalled" not in frozen["classes"], frozen
    assert frozen["frames"] > 0, "the picture is still drawn under the notice"
    # The time counts up from when the picture stopped changing, not from the notice.
    seconds = int(frozen["text"].split()[-2])
    assert seconds >= 2, frozen
    wait_until("time counts up", lambda: int(health(dashboard, "bed-7")["text"].split()[-2]) >= seconds + 2, timeout=6)
    # A dashboard opened now says so at once, from the state the relay sends after stream_started.
    browser.switch_to.new_window("window")
    late = Dashboard(browser, watched_relay.url)
    wait_until("late dashboard shows it", lambda: (health(late, "bed-7") or {}).get("state") == "frozen", timeout=5)
    # The camera moves again: the notice goes away.
    browser.switch_to.window(camera)
    browser.execute_script(STREAMER, f"ws://127.0.0.1:{watched_relay.port}/ws/stream/bed-7", "live", 128)
    wait_until("ok again", lambda: (h := health(dashboard, "bed-7")) and h["state"] is None and not h["shown"], timeout=10)
    assert "unhealthy" not in health(dashboard, "bed-7")["classes"]


def test_a_dark_room_is_said_and_the_admin_page_lists_it(watched_relay, browser):
    dashboard = Dashboard(browser, watched_relay.url)
    stream(browser, watched_relay, "bed-8", "live", level=4)
    dark = wait_until("dark shown", lambda: (h := health(dashboard, "bed-8")) and h["state"] == "dark" and h, timeout=15)
    assert dark["text"].startswith("picture dark for "), dark
    browser.switch_to.new_window("window")
    browser.get(watched_relay.url + "/admin")
    row = wait_until("admin row", lambda: browser.execute_script(
        "return [...document.querySelectorAll('#streams tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
        ".find(r => r[0] === 'bed-8' && r[7] !== 'ok')"))
    assert row[7].startswith("picture dark since "), row
