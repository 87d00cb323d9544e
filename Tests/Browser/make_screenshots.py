"""Regenerates docs/*.png: the dashboard with two live streams, the camera
page, the stream health page, and the token prompt of a relay with auth on,
from a real server and browser.

    .build/browser-venv/bin/python Tests/Browser/make_screenshots.py
"""

import os
import sys
import time

from conftest import ROOT, Relay, make_browser
from pages import Camera, Dashboard, wait_until
from selenium.webdriver.common.by import By


def main():
    relay = Relay([])
    driver = make_browser()
    try:
        dashboard = Dashboard(driver, relay.url)
        for stream_id in ("P-DHE-001", "P-DHE-002"):
            Camera(driver, relay.url, stream_id).start()
        camera = Camera(driver, relay.url, "P-DHE-003").start()
        wait_until("three live tiles", lambda: len(dashboard.live_ids()) == 3)
        time.sleep(2)
        camera.focus()
        driver.save_screenshot(str(ROOT / "docs" / "camera.png"))
        camera.stop()
        camera.close_tab()
        wait_until("only the two live tiles", lambda: [t["id"] for t in dashboard.tiles()] == ["P-DHE-001", "P-DHE-002"])
        time.sleep(1)
        dashboard.focus()
        driver.save_screenshot(str(ROOT / "docs" / "dashboard.png"))
        # A window of its own: a tab over the dashboard would hide it, and hidden
        # tiles are sent nothing, so the cameras would drop to a frame every 2 s.
        driver.switch_to.new_window("window")
        driver.get(relay.url + "/admin")
        # The charts draw a point per 10 s: a few of them.
        time.sleep(32)
        driver.save_screenshot(str(ROOT / "docs" / "admin.png"))
    finally:
        driver.quit()
        relay.stop()
    token_prompt()


def token_prompt():
    secret = ROOT / ".build" / "screenshot-secret"
    secret.write_bytes(os.urandom(48).hex().encode())
    relay = Relay(["--jwt-secret-file", str(secret)])
    driver = make_browser()
    try:
        driver.get(relay.url + "/")
        field = wait_until("the token prompt", lambda: driver.find_elements(By.ID, "token-input"))[0]
        field.send_keys("eyJhbGciOiJIUzI1NiJ9.not-a-real-token.x")
        driver.find_element(By.ID, "token-submit").click()
        wait_until("the refusal explained", lambda: "Not accepted" in driver.find_element(By.ID, "token-form").text)
        time.sleep(0.5)
        driver.save_screenshot(str(ROOT / "docs" / "token.png"))
    finally:
        driver.quit()
        relay.stop()
        secret.unlink()


if __name__ == "__main__":
    sys.exit(main())
