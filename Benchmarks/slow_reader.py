"""A viewer on a slow device: it reads one WebSocket message every 1/RATE
seconds straight from its socket and buffers nothing of its own, so what
waits for it waits in the kernel (its receive buffer, the relay's send
buffer) or in the relay. `framepipe-bench watch --read-rate` cannot model
this: its client library reads ahead into a queue of its own, and the age it
reports is mostly that queue's. Prints one JSON line like `watch`.

    python3 Benchmarks/slow_reader.py URL SECONDS RATE [LABEL] [WARMUP]

URL is the relay's base (ws://host:port). Standard library only, so it runs
inside a network namespace with the system's python3. With
SLOW_READER_TRACE=1 it prints each message it reads (and a frame's age) to
stderr.
"""

import base64
import json
import os
import socket
import struct
import sys
import time
from urllib.parse import urlparse


def read_exact(sock, n):
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise ConnectionError("closed by the relay")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def send_frame(sock, opcode, payload):
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    n = len(payload)
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
    sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def read_message(sock):
    """One whole message (fragments joined); answers control frames on the way."""
    parts, first_opcode = [], None
    while True:
        b0, b1 = read_exact(sock, 2)
        opcode, n = b0 & 0x0F, b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", read_exact(sock, 2))[0]
        elif n == 127:
            n = struct.unpack(">Q", read_exact(sock, 8))[0]
        payload = read_exact(sock, n)
        if opcode == 0x9:
            send_frame(sock, 0xA, payload)
            continue
        if opcode == 0x8:
            code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
            raise ConnectionError(f"closed by the relay ({code} {payload[2:].decode(errors='replace')})")
        if opcode == 0xA:
            continue
        if opcode != 0:
            first_opcode = opcode
        parts.append(payload)
        if b0 & 0x80:
            return first_opcode, b"".join(parts)


def main():
    url, seconds, rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    label = sys.argv[4] if len(sys.argv) > 4 else ""
    warmup = float(sys.argv[5]) if len(sys.argv) > 5 else 3
    target = urlparse(url)
    sock = socket.create_connection((target.hostname, target.port or 80))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws/viewer?format=binary HTTP/1.1\r\nHost: {target.netloc}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += read_exact(sock, 1)
    if b" 101 " not in response.split(b"\r\n")[0]:
        raise SystemExit(f"upgrade refused: {response.decode(errors='replace')}")
    start = time.monotonic()
    ages, frames, size, closed_after, reason = [], 0, 0, None, None
    try:
        while time.monotonic() - start < seconds:
            opcode, payload = read_message(sock)
            if os.environ.get("SLOW_READER_TRACE"):
                age = (time.time() * 1000 - json.loads(payload[2:2 + struct.unpack(">H", payload[:2])[0]]).get("timestamp", 0)
                       if opcode == 2 else None)
                print(round(time.monotonic() - start, 2), opcode, payload[:80] if opcode == 1 else len(payload),
                      age and round(age), file=sys.stderr)
            if opcode == 0x1:
                if payload.startswith(b'{"type":"ping"'):
                    send_frame(sock, 0x1, b'{"type":"pong"}')
            elif opcode == 0x2 and len(payload) >= 2:
                n = struct.unpack(">H", payload[:2])[0]
                header = json.loads(payload[2:2 + n])
                if time.monotonic() - start >= warmup and "timestamp" in header:
                    ages.append(time.time() * 1000 - header["timestamp"])
                    frames += 1
                    size += len(payload)
            # The device is busy with what it read; the next read is 1/RATE from now.
            time.sleep(1 / rate)
    except (ConnectionError, OSError) as error:
        closed_after, reason = round(time.monotonic() - start, 1), str(error)
    window = seconds - warmup
    ages.sort()

    def pct(p):
        return round(ages[min(len(ages) - 1, int(p * len(ages)))]) if ages else None

    result = {"label": label, "connected": closed_after is None, "closed_after_s": closed_after,
              "fps": round(frames / window, 2), "kbytes_per_s": round(size / window / 1000, 1),
              "age_p50_ms": pct(0.5), "age_p95_ms": pct(0.95), "age_max_ms": round(ages[-1]) if ages else None}
    state = "connected throughout" if closed_after is None else f"closed after {closed_after} s ({reason})"
    print(f"viewer {label}: {state}; {result['fps']} fps; frame age ms p50 {result['age_p50_ms']} "
          f"p95 {result['age_p95_ms']} max {result['age_max_ms']}")
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
