"""Bytes a real dashboard receives: 16 streams of 1280x720 JPEGs shown in a
1400x1000 Chromium window, measured from the relay's own count of what it
wrote to that viewer's socket (/api/viewers bytes_written), with each tile's
drawn width and the rendition it is sent.

Usage (from the repository root, with the browser tests' virtualenv):
  .build/browser-venv/bin/python Benchmarks/dashboard_bytes.py --relay DIR [--config FILE] [--bench DIR] [--label L]
DIR holds the `framepipe` binary to measure; the load tool comes from --bench
(default .build-release/release, from `swift build -c release --scratch-path .build-release`). Appends one JSON line to Benchmarks/dashboard-bytes.jsonl.
Not part of CI: it takes about a minute per run.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parents[1]


def get_json(base, path):
    with urllib.request.urlopen(base + path, timeout=5) as response:
        return json.load(response)


def wait_for(what, condition, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--relay", required=True)
    parser.add_argument("--bench", default=str(ROOT / ".build-release" / "release"))
    parser.add_argument("--label", default="")
    parser.add_argument("--config", default=str(ROOT / "pipelines.json"), help="the pipelines file the relay runs (an older build: its own)")
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--fps", type=float, default=10)
    parser.add_argument("--frame-bytes", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()

    log = tempfile.NamedTemporaryFile("w+", prefix="framepipe-dashboard-bytes-", suffix=".log", delete=False)
    relay = subprocess.Popen([f"{args.relay}/framepipe", "serve", "--port", "0", "--log-level", "warning", "--config", args.config,
                              "--max-connections-per-address", "0", "--upgrade-rate-per-address", "0"],
                             cwd=ROOT, stdout=log, stderr=log)
    load = driver = None
    try:
        port = wait_for("the relay", lambda: (re.findall(r"dashboard[= ]+http://127\.0\.0\.1:(\d+)/", Path(log.name).read_text()) or [None])[-1])
        base = f"http://127.0.0.1:{port}"
        load = subprocess.Popen([f"{args.bench}/framepipe-bench", "load", "--url", f"ws://127.0.0.1:{port}", "--streams", str(args.streams),
                                 "--width", "1280", "--height", "720", "--frame-bytes", str(args.frame_bytes), "--fps", str(args.fps),
                                 "--viewers", "1", "--format", "binary", "--warmup", "1", "--duration", str(args.seconds + 25)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", "--force-device-scale-factor=1"]:
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.set_window_size(1400, 1000)
        driver.get(base + "/")
        wait_for("16 tiles drawing", lambda: driver.execute_script(
            "return [...document.querySelectorAll('.tile')].filter(t => Number(t.dataset.frames || 0) > 2).length") >= args.streams)
        viewer = driver.execute_script("return document.body.dataset.viewerId")
        time.sleep(5)  # let the policy settle on every tile's size

        def written():
            entry = next(v for v in get_json(base, "/api/viewers") if v["id"] == viewer)
            return entry["bytes_written"], entry

        frames_before = driver.execute_script("return [...document.querySelectorAll('.tile')].reduce((n, t) => n + Number(t.dataset.frames || 0), 0)")
        bytes_before, _ = written()
        started = time.monotonic()
        time.sleep(args.seconds)
        bytes_after, entry = written()
        elapsed = time.monotonic() - started
        frames_after = driver.execute_script("return [...document.querySelectorAll('.tile')].reduce((n, t) => n + Number(t.dataset.frames || 0), 0)")
        drawn = driver.execute_script("return [...document.querySelectorAll('.tile canvas')].map(c => Math.round(c.getBoundingClientRect().width * devicePixelRatio))")
        views = entry.get("views", [])
        fit = [v for v in views if v["rendition"] == "full" or (v["rendition_width"] or 0) >= (v["width"] or 0)]
        rate = (bytes_after - bytes_before) / elapsed
        result = {
            "label": args.label, "streams": args.streams, "fps": args.fps, "frame_bytes": args.frame_bytes, "window": "1400x1000",
            "dashboard_bytes_per_second": round(rate), "dashboard_fps_drawn": round((frames_after - frames_before) / elapsed, 1),
            "tile_drawn_width": sorted(set(drawn)), "renditions": sorted({v["rendition"] for v in views}) or ["full (no view hints)"],
            "tiles_fit": f"{len(fit)}/{len(views)}" if views else "n/a",
        }
        print(f"dashboard receives {rate / 1e6:.2f} MB/s, draws {result['dashboard_fps_drawn']} frames/s over {args.streams} tiles "
              f"{result['tile_drawn_width']} px wide; renditions {result['renditions']}, tiles at least as wide as drawn: {result['tiles_fit']}")
        with open(ROOT / "Benchmarks" / "dashboard-bytes.jsonl", "a") as out:
            out.write(json.dumps(result) + "\n")
    finally:
        if driver:
            driver.quit()
        for process in (load, relay):
            if process and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    sys.exit(main())
