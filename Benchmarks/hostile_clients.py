"""Hostile clients against a running relay, from a second loopback address
(127.0.0.2) so the relay's per-address limits treat them as the stranger
they are: slowloris upgrades, a never-ending message, 10,000 tiny messages
a second, and a connection flood. Prints one JSON line of counts per attack.

Run: python3 hostile_clients.py ATTACK PORT SECONDS   (standard library only)
"""

import asyncio
import base64
import json
import os
import struct
import sys
import time

SOURCE = ("127.0.0.2", 0)


def masked(first_byte, payload):
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first_byte, 0x80 | n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", first_byte, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first_byte, 0x80 | 127, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def upgrade(port, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=SOURCE)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    status = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).split(b" ", 2)[1]
    if status != b"101":
        writer.close()
        raise ConnectionRefusedError(status.decode())
    return reader, writer


async def slowloris(port, seconds, counts):
    """Connections that send their request headers a line a second, forever."""
    async def one():
        while time.monotonic() < deadline:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=SOURCE)
            except OSError:
                counts["connect_failed"] += 1
                await asyncio.sleep(0.2)
                continue
            counts["opened"] += 1
            opened = time.monotonic()
            try:
                writer.write(b"GET /ws/viewer HTTP/1.1\r\n")
                while time.monotonic() < deadline:
                    await asyncio.sleep(1)
                    writer.write(b"X-Slow: 1\r\n")
                    await writer.drain()
                    if reader.at_eof() or writer.is_closing():
                        break
                    try:
                        if await asyncio.wait_for(reader.read(1), 0.01) == b"":
                            break
                    except asyncio.TimeoutError:
                        pass
                else:
                    continue
                counts["cut_off"] += 1
                counts["longest_held_s"] = max(counts["longest_held_s"], round(time.monotonic() - opened, 1))
            except (ConnectionError, OSError):
                counts["cut_off"] += 1
            writer.close()
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(one() for _ in range(200)))


async def endless_message(port, seconds, counts):
    """A text message whose continuation frames never end."""
    deadline = time.monotonic() + seconds
    chunk = b"a" * 65536
    while time.monotonic() < deadline:
        try:
            reader, writer = await upgrade(port, "/ws/stream/hostile-endless")
        except (OSError, ConnectionRefusedError, asyncio.TimeoutError):
            counts["refused"] += 1
            await asyncio.sleep(0.2)
            continue
        sent = 0
        writer.write(masked(0x01, chunk))
        try:
            while time.monotonic() < deadline:
                writer.write(masked(0x00, chunk))
                await writer.drain()
                sent += len(chunk)
        except (ConnectionError, OSError):
            counts["cut_off"] += 1
            counts["max_bytes_before_cut"] = max(counts["max_bytes_before_cut"], sent + len(chunk))
        writer.close()


async def tiny_messages(port, seconds, counts):
    """10,000 tiny messages a second on a streamer socket, never reading the replies."""
    deadline = time.monotonic() + seconds
    ping = masked(0x81, b'{"type":"ping"}')
    try:
        reader, writer = await upgrade(port, "/ws/stream/hostile-tiny")
    except (OSError, ConnectionRefusedError) as error:
        counts["refused"] = str(error)
        return
    while time.monotonic() < deadline:
        started = time.monotonic()
        writer.write(ping * 100)
        try:
            await writer.drain()
        except (ConnectionError, OSError):
            counts["cut_off"] += 1
            break
        counts["sent"] += 100
        await asyncio.sleep(max(0, 0.01 - (time.monotonic() - started)))
    writer.close()


async def connection_flood(port, seconds, counts):
    """As many TCP connections as can be opened, held open."""
    deadline = time.monotonic() + seconds
    held = []

    async def one():
        while time.monotonic() < deadline:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=SOURCE)
                counts["opened"] += 1
                held.append(writer)
                try:
                    if await asyncio.wait_for(reader.read(1), 0.5) == b"":
                        counts["closed_by_relay"] += 1
                except asyncio.TimeoutError:
                    pass
            except OSError:
                counts["connect_failed"] += 1
                await asyncio.sleep(0.05)
    await asyncio.gather(*(one() for _ in range(100)))
    for w in held:
        w.close()


ATTACKS = {"slowloris": slowloris, "endless-message": endless_message, "tiny-messages": tiny_messages,
           "connection-flood": connection_flood}

if __name__ == "__main__":
    attack, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    counts = {"opened": 0, "cut_off": 0, "refused": 0, "connect_failed": 0, "sent": 0, "closed_by_relay": 0,
              "longest_held_s": 0, "max_bytes_before_cut": 0}
    asyncio.run(ATTACKS[attack](port, seconds, counts))
    print(json.dumps({"attack": attack, **{k: v for k, v in counts.items() if v}}))
