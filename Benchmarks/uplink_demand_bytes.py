"""What demand saves on a camera's uplink: the camera page's bytes per second
while nobody watches, while a dashboard shows it in a small tile (a 4×4 grid),
and while it is opened large; and how long after a viewer appears the camera
is back at its full rate. Run with the browser venv against the debug build:

    .build/browser-venv/bin/python Benchmarks/uplink_demand_bytes.py [SECONDS]
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Tests" / "Browser"))
from conftest import Relay, make_browser  # noqa: E402
from pages import Camera, Dashboard, wait_until  # noqa: E402

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 20


def rate(browser, camera, seconds):
    camera.focus()
    first = browser.execute_script("return window.framepipeUplink()")
    time.sleep(seconds)  # a span of real time is what is measured
    camera.focus()
    last = browser.execute_script("return window.framepipeUplink()")
    return {"bytes_per_s": round((last["bytesSent"] - first["bytesSent"]) / seconds),
            "fps": round((last["sent"] - first["sent"]) / seconds, 2), "picture": f"{last['width']}x{last['height']}"}


def main():
    relay = Relay([])
    browser = make_browser()
    try:
        browser.set_window_size(1400, 1000)
        camera = Camera(browser, relay.url, "bed-1", fps=15, new_tab=False, resolution="1280x720").start()
        wait_until("told nobody watches", lambda: browser.execute_script(
            "const u = window.framepipeUplink(); return u && u.demand.watched === false"), timeout=10)
        unwatched = rate(browser, camera, SECONDS)
        browser.switch_to.new_window("window")
        asked = time.monotonic()
        dashboard = Dashboard(browser, relay.url)
        # A 4×4 grid's tile: the dashboard's grid is sized to the window; narrow it to four to a row of ~330 px.
        camera.focus()
        wait_until("watched", lambda: browser.execute_script("return window.framepipeUplink().demand.watched"), timeout=5)
        base = browser.execute_script("return window.framepipeUplink().sent")
        wait_until("back at the chosen rate", lambda: browser.execute_script("return window.framepipeUplink().sent") - base >= 3, timeout=5)
        back_after = time.monotonic() - asked
        # From the demand's arrival (the relay sends it as the viewer connects) to the first three frames after it.
        after_told = browser.execute_script("return window.framepipeUplink().sentSinceWatched")
        time.sleep(4)  # the pacer settles on the tile's size
        small = rate(browser, camera, SECONDS)
        dashboard.focus()
        browser.execute_script("document.querySelector('.tile').click()")
        time.sleep(8)  # one step up every two calm seconds
        large = rate(browser, camera, SECONDS)
        result = {"unwatched": unwatched, "small_tile": small, "large_tile": large,
                  "unwatched_share_of_large": round(unwatched["bytes_per_s"] / large["bytes_per_s"], 3),
                  "small_share_of_large": round(small["bytes_per_s"] / large["bytes_per_s"], 3),
                  "first_frames_after_told_ms": [round(t) for t in after_told],
                  "three_frames_after_dashboard_opened_s": round(back_after, 2)}
        print(json.dumps(result))
    finally:
        browser.quit()
        relay.stop()


if __name__ == "__main__":
    main()
