#!/usr/bin/env python3
"""Start `framepipe serve` again and again and open many connections the moment
it listens; report every start that crashed.

Why: a Swift runtime race (two event loops instantiating the same generic
type's metadata by name at once, the first time it is used) crashed the relay
once at startup in CI, when its first two connections arrived together. The
relay now instantiates its connection pipeline once on one thread before it
listens (ConnectionTypesWarmUp). This script looks for such a crash; it did
not catch one in 300 starts before that change either, so a clean result
says the race is rare, not that it is gone. Not part of the test command.

usage: scripts/first-connections-check.py [--starts N] [--connections M] [--binary PATH]
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REQUESTS = [
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /ws/viewer HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hammer(port, request, deadline, answers):
    """Connect as soon as the port accepts, send one request, keep the first reply line."""
    while time.monotonic() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            continue
        try:
            s.sendall(request)
            answers.append(s.recv(64).split(b"\r\n")[0])
        except OSError as error:
            answers.append(repr(error).encode())
        finally:
            s.close()
        return


def one_start(binary, connections):
    port = free_port()
    with tempfile.TemporaryFile() as log:
        relay = subprocess.Popen([binary, "serve", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
        answers = []
        deadline = time.monotonic() + 30
        threads = [threading.Thread(target=hammer, args=(port, REQUESTS[i % 2], deadline, answers))
                   for i in range(connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        crashed = relay.poll() is not None
        if not crashed:
            relay.send_signal(signal.SIGTERM)
            relay.wait(timeout=30)
            crashed = relay.returncode not in (0, -signal.SIGTERM)
        log.seek(0)
        text = log.read().decode(errors="replace")
        crashed = crashed or "Program crashed" in text
        return crashed, answers, text


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=300)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", ".build", "debug", "framepipe"))
    args = parser.parse_args()
    crashes = 0
    for n in range(1, args.starts + 1):
        crashed, answers, text = one_start(args.binary, args.connections)
        if crashed:
            crashes += 1
            print(f"start {n}: CRASHED; replies {answers}")
            print("\n".join(line for line in text.splitlines() if "crashed" in line.lower() or " in framepipe " in line)[:3000])
    print(f"{args.starts} starts, {args.connections} connections each at once: {crashes} crashed")
    sys.exit(1 if crashes else 0)


if __name__ == "__main__":
    main()
