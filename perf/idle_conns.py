#!/usr/bin/env python3
"""Opens COUNT keep-alive client connections to HOST:PORT, sends one GET on each, reads each
complete response, then holds them all open and idle.

    idle_conns.py HOST PORT COUNT [--concurrency N] [--timeout SECONDS]

At most --concurrency connections are being set up or waiting for their response at any moment,
so the listener's backlog never overflows and the proxy needs no more upstream connections than
in the throughput benchmark: what it has to remember afterwards is the idle client connections.

When every connection has its response, one line goes to standard output:
    HELD <ok> failed=<n> non200=<n> badbody=<n> seconds=<s>
then the program waits. On SIGUSR1 it checks, without reading, whether each held connection is
still open (the proxy closing one would show as end-of-file), prints
    OPEN <n> CLOSED <n>
and exits, closing them all. On SIGTERM or SIGINT it exits at once. Exit status 0 when every
connection got a 200 with the expected body and (after SIGUSR1) is still open, 1 otherwise.
"""
import argparse
import errno
import resource
import selectors
import signal
import socket
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: gantry-idle-conns\r\n\r\n"


class Conn:
    __slots__ = ("sock", "buf", "sent")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.sent = 0


def parse_response(buf):
    """(status, body) once buf holds one complete Content-Length response, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if len(buf) < end + 4 + length:
        return None
    return status, buf[end + 4 : end + 4 + length]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--body", default="0123456789abcdef", help="expected response body")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < args.count + 64:
        sys.exit(f"idle_conns: the descriptor hard limit {hard} is too low for {args.count}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    expected_body = args.body.encode()
    sel = selectors.DefaultSelector()
    held = []
    started = inflight = failed = non200 = badbody = 0
    t0 = time.monotonic()
    deadline = t0 + args.timeout

    def finish(c, ok):
        nonlocal inflight, failed
        sel.unregister(c.sock)
        inflight -= 1
        if ok:
            held.append(c.sock)
        else:
            failed += 1
            c.sock.close()

    while len(held) + failed < args.count:
        while inflight < args.concurrency and started < args.count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex((args.host, args.port))
            if rc not in (0, errno.EINPROGRESS):
                s.close()
                failed += 1
                started += 1
                continue
            sel.register(s, selectors.EVENT_WRITE, Conn(s))
            started += 1
            inflight += 1
        if time.monotonic() > deadline:
            print(f"idle_conns: timed out with {inflight} connections unanswered", file=sys.stderr)
            failed += inflight
            break
        for key, _ in sel.select(timeout=1.0):
            c = key.data
            try:
                if c.sent < len(REQUEST):
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        finish(c, False)
                        continue
                    c.sent += c.sock.send(REQUEST[c.sent :])
                    if c.sent == len(REQUEST):
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                    continue
                data = c.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                finish(c, False)
                continue
            if not data:
                finish(c, False)
                continue
            c.buf += data
            r = parse_response(c.buf)
            if r is None:
                continue
            status, body = r
            if status != 200:
                non200 += 1
            elif body != expected_body:
                badbody += 1
            finish(c, True)

    print(
        f"HELD {len(held)} failed={failed} non200={non200} badbody={badbody} "
        f"seconds={time.monotonic() - t0:.2f}",
        flush=True,
    )

    checked = []
    signal.signal(signal.SIGUSR1, lambda *_: checked.append(True))
    while not checked:
        signal.pause()
    # End-of-file or an error means the proxy closed it; nothing to read, or unexpected bytes
    # waiting, both mean it is still open.
    closed = 0
    for s in held:
        try:
            closed += s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    open_ = len(held) - closed
    print(f"OPEN {open_} CLOSED {closed}", flush=True)
    ok = failed == 0 and non200 == 0 and badbody == 0 and closed == 0 and len(held) == args.count
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
