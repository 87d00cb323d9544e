"""The baseline: a bare Python broadcast loop with no validation, speaking
enough of framepipe's protocol for `framepipe-bench load` to measure it.

Each frame a streamer sends is wrapped once per viewer format and the same
message is handed to `websockets.broadcast` for every viewer of that format:
JSON viewers (the default, as the original dashboard) get
`{"type":"frame",…,"frame":"data:image/jpeg;base64,…"}`, `?format=binary`
viewers the binary format. A streamer may send the raw JPEG or the original
JSON data-URL message. No latest-wins, no isolation, no checks.
Run: python3 plain_broadcast.py PORT (needs `pip install websockets`).
"""

import asyncio
import base64
import json
import struct
import sys

import websockets

viewers = {"json": set(), "binary": set()}
seqs = {}


async def handler(ws):
    path = ws.request.path
    if path.startswith("/ws/viewer"):
        kind = "binary" if "format=binary" in path else "json"
        await ws.send(json.dumps({"type": "viewer_connected", "viewer_id": f"v-{id(ws)}", "active_streams": list(seqs)}))
        viewers[kind].add(ws)
        try:
            async for _ in ws:
                pass
        except websockets.ConnectionClosed:
            pass  # the load tool ends without a closing handshake
        finally:
            viewers[kind].discard(ws)
    elif path.startswith("/ws/stream/"):
        stream_id = path.rsplit("/", 1)[1]
        seqs[stream_id] = 0
        try:
            await relay(ws, stream_id)
        except websockets.ConnectionClosed:
            pass  # as above
        seqs.pop(stream_id, None)


async def relay(ws, stream_id):
    async for frame in ws:
        header = {"type": "frame", "stream_id": stream_id, "seq": seqs[stream_id], "quality": "full"}
        seqs[stream_id] += 1
        if isinstance(frame, str):
            url = json.loads(frame)["frame"]
            jpeg = None
        else:
            url = None
            jpeg = frame
        if viewers["json"]:
            if url is None:
                url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
            websockets.broadcast(viewers["json"], json.dumps({**header, "frame": url}, separators=(",", ":")))
        if viewers["binary"]:
            if jpeg is None:
                jpeg = base64.b64decode(url.split(",", 1)[1])
            encoded = json.dumps(header).encode()
            websockets.broadcast(viewers["binary"], struct.pack(">H", len(encoded)) + encoded + jpeg)


async def main(port):
    async with websockets.serve(handler, "127.0.0.1", port, compression=None, max_size=16 << 20, ping_interval=None):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
