"""Pages carry the headers the security model relies on."""

import urllib.request


def test_pages_send_security_headers(relay):
    for path in ("/", "/stream", "/admin", "/assets/dashboard.js"):
        with urllib.request.urlopen(relay.url + path) as response:
            assert response.status == 200
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Referrer-Policy"] == "no-referrer"
