"""With auth on, each page asks for a token once, keeps it for the tab, and
shows only what the token covers."""

import os
import subprocess

import pytest
import websocket
from selenium.webdriver.common.by import By

from conftest import FAILURES, ROOT, Relay
from pages import Camera, Dashboard, wait_until

BINARY = os.environ.get("FRAMEPIPE_BINARY", str(ROOT / ".build" / "debug" / "framepipe"))


@pytest.fixture
def secret_file():
    FAILURES.mkdir(parents=True, exist_ok=True)
    path = FAILURES / f"secret-{os.getpid()}"
    path.write_bytes(os.urandom(48).hex().encode())
    yield path
    path.unlink()


@pytest.fixture
def authed_relay(secret_file):
    r = Relay(["--jwt-secret-file", str(secret_file)])
    yield r
    r.stop()


def mint(secret_file, role, stream):
    out = subprocess.run([BINARY, "token", "--secret-file", str(secret_file), "--role", role, "--stream", stream, "--ttl", "10m"],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def give_token(driver, token):
    field = wait_until("the token prompt", lambda: driver.find_elements(By.ID, "token-input"))[0]
    field.send_keys(token)
    driver.find_element(By.ID, "token-submit").click()


def test_pages_ask_for_a_token_and_show_only_what_it_covers(authed_relay, secret_file, browser):
    ward_a = mint(secret_file, "viewer", "A-*")
    publisher = mint(secret_file, "streamer", "*")

    dashboard = Dashboard(browser, authed_relay.url)
    # A streamer token is valid but not for watching: the prompt says so and asks again.
    give_token(browser, publisher)
    wait_until("the wrong-role explanation", lambda: "needs a viewer token" in browser.find_element(By.ID, "token-form").text)
    give_token(browser, ward_a)
    wait_until("connected", lambda: dashboard.connection() == "live")

    # The camera page asks when it first connects.
    a = Camera(browser, authed_relay.url, "A-1").start()
    give_token(browser, publisher)
    b = Camera(browser, authed_relay.url, "B-1").start()
    give_token(browser, publisher)
    wait_until("A-1 shown", lambda: (dashboard.tile("A-1") or {}).get("frames", 0) > 2)
    wait_until("B-1 is live on the relay", lambda: "live" in b.text("connection"))
    # The dashboard's token covers A-* only: B-1 never appears, not even its id.
    assert [t["id"] for t in dashboard.tiles()] == ["A-1"]
    assert "B-1" not in browser.page_source
    # The token was kept for the tab: a reload does not ask again.
    dashboard.focus()
    browser.refresh()
    wait_until("A-1 shown again without a prompt", lambda: (dashboard.tile("A-1") or {}).get("frames", 0) > 0)
    assert not browser.find_elements(By.ID, "token-form")
    a.stop()
    b.stop()


def mint_for(secret_file, role, stream, ttl):
    out = subprocess.run([BINARY, "token", "--secret-file", str(secret_file), "--role", role, "--stream", stream, "--ttl", ttl],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def closed_by_the_relay(socket):
    """Reads until the relay closes the socket, and says why (its close reason)."""
    while True:
        opcode, data = socket.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return data[2:].decode()


def test_the_dashboard_asks_for_a_fresh_token_before_expiry_and_keeps_its_socket(secret_file, browser):
    relay = Relay(["--jwt-secret-file", str(secret_file), "--token-expiry-warning", "15"])
    try:
        short = mint_for(secret_file, "viewer", "*", "20s")
        # Minted after `short`, never refreshed: the relay closing its socket for expiry
        # is the proof that the relay's clock has passed `short`'s exp too.
        witness_token = mint_for(secret_file, "viewer", "*", "20s")
        fresh = mint_for(secret_file, "viewer", "*", "10m")
        publisher = mint(secret_file, "streamer", "*")
        dashboard = Dashboard(browser, relay.url)
        give_token(browser, short)
        wait_until("connected", lambda: dashboard.connection() == "live")
        # It watches no stream, so nothing waits for it to read but the relay's own few messages.
        witness = websocket.create_connection(f"ws://127.0.0.1:{relay.port}/ws/viewer?token={witness_token}&streams=witness-watches-nothing",
                                              timeout=40)
        viewer_id = browser.execute_script("return document.body.dataset.viewerId")
        camera = Camera(browser, relay.url, "P-1").start()
        give_token(browser, publisher)
        dashboard.focus()
        wait_until("P-1 shown", lambda: (dashboard.tile("P-1") or {}).get("frames", 0) > 2)
        # token_expiring arrives 15 s before exp: the prompt says why, while the picture keeps coming.
        prompt = wait_until("the expiry prompt", lambda: browser.find_elements(By.ID, "token-form"), timeout=15)[0]
        assert "expires in" in prompt.text
        assert dashboard.connection() == "live"
        give_token(browser, fresh)
        # Past the first token's exp the same socket (same viewer id) is still live and drawing.
        assert closed_by_the_relay(witness) == "token_expired"
        assert dashboard.connection() == "live"
        assert browser.execute_script("return document.body.dataset.viewerId") == viewer_id
        before = dashboard.tile("P-1")["frames"]
        wait_until("frames keep arriving", lambda: dashboard.tile("P-1")["frames"] > before + 2)
        camera.stop()
    finally:
        relay.stop()
