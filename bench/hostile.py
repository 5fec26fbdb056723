#!/usr/bin/env python3
"""Hostile peers against a Rust upnode server process, measured from outside.

Starts `target/release/loopback serve-upnode` (an upnode-tokio server exporting
`echo(x, cb)`, default settings), then runs one scenario against it over 127.0.0.1 and
prints the server's peak resident memory (VmHWM from /proc) with what happened:

  stalled   one client calls echo with 64 KiB, 200 times a second, and never reads
  garbage   N connections: a quarter send most of a 9 MiB line without a newline, a quarter
            `null` lines, a quarter random bytes, a quarter one byte every 100 ms
  crowd     N connects at once; how many took a second or more (a kernel accept-queue
            overflow costs a one-second SYN retry)

Usage: python3 bench/hostile.py SCENARIO [N]   (build first: cargo build --release -p upnode-bench)
"""

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "target", "release", "loopback")
METHODS = b'{"method":"methods","arguments":[{}],"callbacks":{},"links":[]}\n'


def start_server():
    p = subprocess.Popen([SERVER, "serve-upnode"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    port = int(p.stdout.readline())
    return p, port


def rss_kb(pid, field="VmHWM"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def stalled(port, seconds=40):
    """One client sends echo calls with 64 KiB, 200 a second, and never reads."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    payload = "x" * (64 * 1024)
    out = bytearray(METHODS)
    sent_calls = 0
    began = time.monotonic()
    closed_at = None
    while time.monotonic() - began < seconds:
        for _ in range(2):
            line = json.dumps({"method": "echo", "arguments": [payload, "[Function]"],
                               "callbacks": {str(sent_calls): ["1"]}, "links": []})
            out += line.encode() + b"\n"
            sent_calls += 1
        try:
            n = s.send(out)
            del out[:n]
        except BlockingIOError:
            pass
        except OSError:
            closed_at = time.monotonic() - began
            break
        time.sleep(0.01)
    return {"calls_made": sent_calls, "unsent_by_client": len(out),
            "connection_ended_after_s": None if closed_at is None else round(closed_at, 1)}


def garbage(port, n, seconds=12):
    """n hostile connections of four kinds, held for `seconds`."""
    socks, stop = [], threading.Event()

    def feeder(kind, s):
        try:
            if kind == 0:
                chunk = b"x" * (256 * 1024)
                for _ in range(36):  # 9 MiB, never a newline
                    if stop.is_set():
                        return
                    s.sendall(chunk)
            elif kind == 1:
                while not stop.is_set():
                    s.sendall(b"null\n")
                    time.sleep(0.05)
            elif kind == 2:
                s.sendall(random.randbytes(64 * 1024))
            else:
                while not stop.is_set():
                    s.sendall(b"{")
                    time.sleep(0.1)
        except OSError:
            pass

    threads = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        socks.append(s)
        t = threading.Thread(target=feeder, args=(i % 4, s), daemon=True)
        t.start()
        threads.append(t)
    time.sleep(seconds)
    stop.set()
    for s in socks:
        s.close()
    return {"connections": n}


def crowd(port, n):
    """n connects at once; counts those that took a second or more."""
    socks, slow = [], 0
    began = time.monotonic()
    pending = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        pending.append((s, time.monotonic()))
    import selectors
    sel = selectors.DefaultSelector()
    for s, t in pending:
        sel.register(s, selectors.EVENT_WRITE, t)
    done = 0
    while done < n and time.monotonic() - began < 10:
        for key, _ in sel.select(timeout=1):
            took = time.monotonic() - key.data
            slow += took >= 1.0
            sel.unregister(key.fileobj)
            socks.append(key.fileobj)
            done += 1
    for s in socks:
        s.close()
    return {"connects": n, "completed": done, "took_1s_or_more": slow}


def main():
    scenario = sys.argv[1] if len(sys.argv) > 1 else "stalled"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    p, port = start_server()
    base = rss_kb(p.pid, "VmRSS")
    try:
        if scenario == "stalled":
            what = stalled(port)
        elif scenario == "garbage":
            what = garbage(port, n)
        elif scenario == "crowd":
            what = crowd(port, n)
        else:
            sys.exit(f"unknown scenario {scenario!r}")
        time.sleep(0.5)
        what.update({"scenario": scenario, "server_rss_at_start_kb": base,
                     "server_peak_rss_kb": rss_kb(p.pid), "server_rss_after_kb": rss_kb(p.pid, "VmRSS")})
        print(json.dumps(what))
    finally:
        p.stdin.close()
        p.wait(timeout=10)


if __name__ == "__main__":
    main()
