#!/usr/bin/env python3
"""What one published frame costs Redis, by publish rate: one Redis against
a cluster-enabled Redis owning every slot, PUBLISH/SUBSCRIBE against
SPUBLISH/SSUBSCRIBE, one subscriber, 60 KB messages.

Why: in the 3-shard benchmark each shard spent about 1.35x what one Redis
spends per crossing frame. This tells apart "cluster mode costs more per
message" from "a shard sees a third of the rate, and a message costs more
when fewer arrive per wake-up of Redis's event loop".

Usage: python3 Benchmarks/redis-publish-cost.py [RATES] [SECONDS]
  RATES: comma-separated messages per second, 0 meaning as fast as it goes
  (pipelined, 50 at a time); default 80,240,720,0. SECONDS per rate: 10.
Needs redis-server on PATH. CPU is Redis's utime+stime from /proc (10 ms ticks).
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

SIZE = 60_000
CHANNEL = "{s1}:frames"


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_for(port):
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            return socket.create_connection(("127.0.0.1", port))
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"redis-server on {port} did not start")


def free_port():
    """A free port whose cluster bus port (+10000) is free too: Redis refuses
    cluster mode on ports above 55535."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 55535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def measure(cluster, rate, seconds):
    directory = tempfile.mkdtemp(prefix="fp-pubcost-")
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory]
    if cluster:
        args += ["--cluster-enabled", "yes", "--cluster-config-file", f"{directory}/nodes.conf"]
    redis = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        publisher = wait_for(port)
        if cluster:
            publisher.sendall(command("CLUSTER", "ADDSLOTSRANGE", 0, 16383))
            publisher.recv(100)
            while b"cluster_state:ok" not in (publisher.sendall(command("CLUSTER", "INFO")) or publisher.recv(4096)):
                time.sleep(0.1)
        publish, subscribe = ("SPUBLISH", "SSUBSCRIBE") if cluster else ("PUBLISH", "SUBSCRIBE")
        subscriber = socket.create_connection(("127.0.0.1", port))
        subscriber.sendall(command(subscribe, CHANNEL))
        subscriber.recv(1000)
        threading.Thread(target=lambda: [None for _ in iter(lambda: subscriber.recv(1 << 20), b"")], daemon=True).start()
        message = command(publish, CHANNEL, os.urandom(SIZE))
        count = (rate or 2000) * seconds
        before, start = cpu_ticks(redis.pid), time.time()
        if rate:
            for i in range(count):
                publisher.sendall(message)
                publisher.recv(100)  # ":1\r\n"
                left = start + (i + 1) / rate - time.time()
                if left > 0:
                    time.sleep(left)
        else:
            for _ in range(0, count, 50):
                publisher.sendall(message * 50)
                replies = b""
                while replies.count(b"\r\n") < 50:
                    replies += publisher.recv(4096)
        ticks = cpu_ticks(redis.pid) - before
        return ticks * 10_000 / count, count / (time.time() - start)
    finally:
        redis.terminate()
        redis.wait()
        shutil.rmtree(directory, ignore_errors=True)


def main():
    rates = [int(r) for r in (sys.argv[1] if len(sys.argv) > 1 else "80,240,720,0").split(",")]
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    print("| publish rate | one Redis, PUBLISH: µs per message | cluster mode, SPUBLISH: µs per message |")
    print("|---|---|---|")
    for rate in rates:
        plain, achieved = measure(False, rate, seconds)
        sharded, _ = measure(True, rate, seconds)
        label = f"{rate}/s" if rate else f"flat out, pipelined ({achieved:.0f}/s)"
        print(f"| {label} | {plain:.0f} | {sharded:.0f} |", flush=True)


if __name__ == "__main__":
    main()
