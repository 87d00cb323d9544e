"""What a person sees on the pages, read through the DOM and the canvas."""

import time

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By


def wait_until(what, condition, timeout=10.0, interval=0.05):
    """Polls `condition` until it is truthy. An element that is missing or
    replaced while a page re-renders (the token prompt is rebuilt after a
    refusal) counts as "not yet", not as a failure."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except (NoSuchElementException, StaleElementReferenceException) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for: {what} (last: {last!r})")


class Dashboard:
    def __init__(self, driver, base):
        self.driver = driver
        self.driver.get(base + "/")
        self.handle = driver.current_window_handle

    def focus(self):
        self.driver.switch_to.window(self.handle)

    def tiles(self):
        self.focus()
        return self.driver.execute_script(
            "return [...document.querySelectorAll('.tile')].map(t => ({id: t.dataset.streamId, frames: Number(t.dataset.frames || 0),"
            " classes: t.className, notice: t.querySelector('.notice').textContent, quality: t.dataset.quality || null,"
            " firstFrameAt: Number(t.dataset.firstFrameAt || 0), fps: t.querySelector('.fps').textContent}))")

    def tile(self, stream_id):
        return next((t for t in self.tiles() if t["id"] == stream_id), None)

    def live_ids(self):
        return sorted(t["id"] for t in self.tiles() if "ended" not in t["classes"] and t["frames"] > 0)

    def picture(self, stream_id):
        """A fingerprint of the tile's pixels: it changes when the picture moves."""
        self.focus()
        return self.driver.execute_script(
            "const t = [...document.querySelectorAll('.tile')].find(t => t.dataset.streamId === arguments[0]);"
            "if (!t) return null; const c = t.querySelector('canvas');"
            "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let h = 0;"
            "for (let i = 0; i < d.length; i += 97) h = (h * 31 + d[i]) % 1000000007; return h;", stream_id)

    def connection(self):
        self.focus()
        return self.driver.find_element(By.ID, "connection").text

    def empty_message_shown(self):
        self.focus()
        return self.driver.execute_script("return !document.getElementById('empty').hidden")


class Camera:
    """A camera page streaming the fake device's moving test pattern, in a
    window of its own: a tab over the dashboard would hide it, and a hidden
    dashboard is sent no frames."""

    def __init__(self, driver, base, stream_id, fps=15, new_tab=True, resolution=None):
        self.driver = driver
        if new_tab:
            driver.switch_to.new_window("window")
        driver.get(base + "/stream")
        self.handle = driver.current_window_handle
        self.stream_id = stream_id
        field = driver.find_element(By.ID, "stream-id")
        field.clear()
        field.send_keys(stream_id)
        fps_field = driver.find_element(By.ID, "fps")
        fps_field.clear()
        fps_field.send_keys(str(fps))
        if resolution:
            driver.execute_script("document.getElementById('resolution').value = arguments[0]", resolution)

    def focus(self):
        self.driver.switch_to.window(self.handle)

    def start(self):
        self.focus()
        self.driver.find_element(By.ID, "start").click()
        return self

    def stop(self):
        self.focus()
        self.driver.find_element(By.ID, "stop").click()

    def close_tab(self):
        self.focus()
        self.driver.close()

    def first_frame_sent_at(self):
        self.focus()
        return self.driver.execute_script("return window.firstFrameSentAt || 0")

    def text(self, element_id):
        self.focus()
        return self.driver.find_element(By.ID, element_id).text
