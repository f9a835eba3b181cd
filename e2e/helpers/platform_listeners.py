"""The platform's extra listeners on 169.254.169.254, beside the emulator.

Run inside the platform namespace (gh-plat-N), never elsewhere. They exist so
the harness can tell "blocked by gatehouse" from "nothing was listening":

- TCP PORT_ALT (8080): answers `platform-8080\n` and closes;
- UDP PORT_ALT (8080): echoes `platform-udp\n`;
- TCP PORT_STREAM (81): sends `tick N\n` every 100 ms for as long as the peer
  stays (at most STREAM_SECONDS), the "server still sending" of the
  pre-apply connection scenario;
- TCP WIRESERVER:80: a stand-in WireServer, answers `wireserver\n`.

Every connection or datagram is counted; the counts are written as one JSON
object to COUNTS_FILE after each event, so the harness reads how many times
the platform was reached without talking to it.

Usage: platform_listeners.py IMDS_ADDRESS WIRESERVER_ADDRESS COUNTS_FILE
"""

import json
import os
import socket
import sys
import threading
import time

PORT_ALT = 8080
PORT_STREAM = 81
STREAM_SECONDS = 120
LIFETIME_SECONDS = 600  # the harness kills us long before; never outlive a run


class Counts:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.counts = {"tcp_alt": 0, "udp_alt": 0, "stream": 0, "wireserver": 0}
        self.write()

    def bump(self, key):
        with self.lock:
            self.counts[key] += 1
            self.write()

    def write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.counts, f)
        os.replace(tmp, self.path)


def answer_once(addr, port, key, greeting, counts):
    """Accept, count, greet, close -- forever."""
    srv = socket.create_server((addr, port))
    while True:
        conn, _ = srv.accept()
        counts.bump(key)
        try:
            conn.sendall(greeting)
        except OSError:
            pass
        conn.close()


def tcp_alt(addr, counts):
    answer_once(addr, PORT_ALT, "tcp_alt", b"platform-8080\n", counts)


def udp_alt(addr, counts):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, PORT_ALT))
    while True:
        _, peer = sock.recvfrom(2048)
        counts.bump("udp_alt")
        sock.sendto(b"platform-udp\n", peer)


def stream_one(conn):
    deadline = time.monotonic() + STREAM_SECONDS
    n = 0
    try:
        # Small sends, no batching: every tick is its own segment.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while time.monotonic() < deadline:
            conn.sendall(f"tick {n}\n".encode())
            n += 1
            time.sleep(0.1)
    except OSError:
        pass
    finally:
        conn.close()


def stream(addr, counts):
    srv = socket.create_server((addr, PORT_STREAM))
    while True:
        conn, _ = srv.accept()
        counts.bump("stream")
        threading.Thread(target=stream_one, args=(conn,), daemon=True).start()


def main(argv):
    if len(argv) != 4:
        print(f"usage: {argv[0]} IMDS_ADDRESS WIRESERVER_ADDRESS COUNTS_FILE", file=sys.stderr)
        return 2
    addr, wireserver, path = argv[1], argv[2], argv[3]
    counts = Counts(path)
    for target in (tcp_alt, udp_alt, stream):
        threading.Thread(target=target, args=(addr, counts), daemon=True).start()
    threading.Thread(target=answer_once, daemon=True,
                     args=(wireserver, 80, "wireserver", b"wireserver\n", counts)).start()
    time.sleep(LIFETIME_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
