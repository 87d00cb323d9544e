"""An MJPEG client for the slow-link benchmark: reads
/api/streams/{id}/mjpeg as fast as its link allows and ages each part by
its X-Timestamp (when the relay received the frame; same machine clock).
Prints one JSON line like `framepipe-bench watch`. Standard library only,
so it runs inside a network namespace with the system's python3.

    python3 Benchmarks/mjpeg_watch.py BASE_URL STREAM SECONDS [LABEL] [WARMUP]
"""

import json
import socket
import sys
import time
from urllib.parse import urlparse


def main():
    base, stream, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    label = sys.argv[4] if len(sys.argv) > 4 else ""
    warmup = float(sys.argv[5]) if len(sys.argv) > 5 else 3
    target = urlparse(base)
    start = time.monotonic()
    while True:  # until the stream is live
        sock = socket.create_connection((target.hostname, target.port))
        sock.sendall(f"GET /api/streams/{stream}/mjpeg HTTP/1.1\r\nHost: {target.netloc}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, data = data.split(b"\r\n\r\n", 1)
        if head.startswith(b"HTTP/1.1 200"):
            break
        sock.close()
        time.sleep(0.1)
    ages, frames, size, closed = [], 0, 0, None
    try:
        while time.monotonic() - start < seconds:
            # One chunk: its size line, then the part (headers first).
            while b"\r\n" not in data:
                more = sock.recv(65536)
                if not more:
                    raise ConnectionError("closed by the relay")
                data += more
            line, data = data.split(b"\r\n", 1)
            length = int(line, 16)
            if length == 0:
                raise ConnectionError("the stream ended")
            while len(data) < length + 2:
                more = sock.recv(262144)
                if not more:
                    raise ConnectionError("closed by the relay")
                data += more
            chunk, data = data[:length], data[length + 2:]
            marker = chunk.find(b"X-Timestamp: ")
            if marker >= 0 and time.monotonic() - start >= warmup:
                stamp = float(chunk[marker + 13:chunk.index(b"\r\n", marker)])
                ages.append(time.time() * 1000 - stamp * 1000)
                frames += 1
                size += length
    except (ConnectionError, OSError) as error:
        closed = (round(time.monotonic() - start, 1), str(error))
    window = seconds - warmup
    ages.sort()

    def pct(p):
        return round(ages[min(len(ages) - 1, int(p * len(ages)))]) if ages else None

    result = {"label": label, "connected": closed is None, "closed_after_s": closed and closed[0],
              "fps": round(frames / window, 2), "kbytes_per_s": round(size / window / 1000, 1),
              "age_p50_ms": pct(0.5), "age_p95_ms": pct(0.95), "age_max_ms": round(ages[-1]) if ages else None}
    print(f"viewer {label}: {'connected throughout' if closed is None else f'closed after {closed[0]} s ({closed[1]})'}; "
          f"{result['fps']} fps, {result['kbytes_per_s']} KB/s; frame age ms p50 {result['age_p50_ms']} p95 {result['age_p95_ms']} "
          f"max {result['age_max_ms']}")
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
