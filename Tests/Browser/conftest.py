"""Browser tests: a real `framepipe serve` and a real headless Chromium with a
fake camera (Debian's chromium and chromedriver; Selenium downloads nothing)."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parents[2]
FAILURES = ROOT / ".build" / "browser-failures"
os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager fetch a driver


class Relay:
    """`framepipe serve` on a free port, restartable on the same port: on
    loopback, or on `host` inside a network namespace when `prefix` is
    `ip netns exec NS` (the far side of a shaped link)."""

    def __init__(self, extra_args, host="127.0.0.1", prefix=()):
        self.extra_args = extra_args
        self.host = host
        self.prefix = list(prefix)
        self.port = 0
        self.process = None
        self.log_path = FAILURES / f"serve-{os.getpid()}-{time.monotonic_ns()}.log"
        self.start()

    def start(self):
        FAILURES.mkdir(parents=True, exist_ok=True)
        binary = os.environ.get("FRAMEPIPE_BINARY", str(ROOT / ".build" / "debug" / "framepipe"))
        self.log = open(self.log_path, "a")
        # A restart appends to the same log, whose earlier run also said
        # "dashboard=…" for the same port: only this run's lines count, or a
        # page could be loaded before this run listens.
        earlier = self.log_path.stat().st_size
        host = [] if self.host == "127.0.0.1" else ["--host", self.host, "--insecure"]
        self.process = subprocess.Popen(
            [*self.prefix, binary, "serve", "--port", str(self.port), *host, *self.extra_args],
            cwd=ROOT, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[earlier:].decode(errors="replace")
            found = re.findall(r"dashboard=http://" + re.escape(self.host) + r":(\d+)/", text)
            if found:
                self.port = int(found[-1])
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)  # polling the relay's log file for its start line: a file gives no event
        raise RuntimeError(f"framepipe serve did not start:\n{self.log_path.read_text()}")

    def terminate(self):
        """SIGTERM, without waiting: what the relay tells its clients as it
        shuts down is checked while it does, not after it has exited."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()

    def kill(self):
        """Dies without a goodbye, as on a power cut or a network drop."""
        self.process.kill()
        self.process.wait()
        self.log.close()

    def restart(self, down_seconds=1.0):
        self.stop()
        time.sleep(down_seconds)  # the outage itself: how long the relay is away is the point
        self.start()

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"


@pytest.fixture
def relay():
    # The relay's own idle timeouts: a camera page a loaded machine holds up
    # for a moment must not lose its stream (a closed tab closes its socket).
    r = Relay([])
    yield r
    r.stop()


def make_browser(camera="fake", extra_args=()):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    args = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
            "--use-fake-device-for-media-stream", "--js-flags=--expose-gc",
            # Tabs share one headless window; a real camera page would be in the
            # foreground, so do not let Chromium slow background tabs' timers.
            "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows"]
    args += list(extra_args)
    if camera == "fake":
        args.append("--use-fake-ui-for-media-stream")
    else:  # camera permission refused, as a person clicking "Block" would
        options.add_experimental_option("prefs", {"profile.default_content_setting_values.media_stream_camera": 2})
    for arg in args:
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


@pytest.fixture
def browser():
    driver = make_browser()
    yield driver
    driver.quit()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        FAILURES.mkdir(parents=True, exist_ok=True)
        for name in ("browser", "second_browser"):
            driver = item.funcargs.get(name)
            if driver is None:
                continue
            for i, handle in enumerate(driver.window_handles):
                try:
                    driver.switch_to.window(handle)
                    path = FAILURES / f"{item.name}-{name}-{i}.png"
                    driver.save_screenshot(str(path))
                    print(f"screenshot saved: {path}")
                except Exception as error:  # a closed tab cannot be captured
                    print(f"no screenshot of window {i}: {error}")
