"""The baseline: a bare Python broadcast loop with no validation, speaking
enough of framepipe's protocol for `framepipe-bench load` to measure it.

Each frame a streamer sends is wrapped once in the binary viewer format and
the same bytes are broadcast to every viewer; no latest-wins, no isolation,
no checks. Run: python3 plain_broadcast.py PORT (needs `pip install websockets`).
"""

import asyncio
import json
import struct
import sys

import websockets

viewers = set()
seqs = {}


async def handler(ws):
    path = ws.request.path
    if path.startswith("/ws/viewer"):
        await ws.send(json.dumps({"type": "viewer_connected", "viewer_id": f"v-{id(ws)}", "active_streams": list(seqs)}))
        viewers.add(ws)
        try:
            async for _ in ws:
                pass
        except websockets.ConnectionClosed:
            pass  # the load tool ends without a closing handshake
        finally:
            viewers.discard(ws)
    elif path.startswith("/ws/stream/"):
        stream_id = path.rsplit("/", 1)[1]
        seqs[stream_id] = 0
        async for frame in ws:
            header = json.dumps({"type": "frame", "stream_id": stream_id, "seq": seqs[stream_id], "quality": "full"}).encode()
            seqs[stream_id] += 1
            if isinstance(frame, str):
                continue
            websockets.broadcast(viewers, struct.pack(">H", len(header)) + header + frame)
        seqs.pop(stream_id, None)


async def main(port):
    async with websockets.serve(handler, "127.0.0.1", port, compression=None, max_size=16 << 20, ping_interval=None):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
