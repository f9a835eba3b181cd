"""A syslog collector over TCP (octet-counting framing) that resets its
first RESETS connections mid-message: it reads CUT bytes, then closes with
an RST (SO_LINGER 0). Later connections are parsed frame by frame and each
complete message is appended to OUT, one per line.
Usage: python3 export_reset_collector.py PORT OUT RESETS CUT
"""
import socket
import struct
import sys
import threading

PORT, OUT, RESETS, CUT = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lock = threading.Lock()


def serve(conn, reset):
    if reset:
        got = 0
        while got < CUT:
            data = conn.recv(CUT - got)
            if not data:
                break
            got += len(data)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        return
    buf = b""
    while True:
        data = conn.recv(65536)
        if not data:
            return
        buf += data
        while True:
            space = buf.find(b" ")
            if space < 0:
                break
            length = int(buf[:space])
            if len(buf) < space + 1 + length:
                break
            msg = buf[space + 1 : space + 1 + length]
            buf = buf[space + 1 + length :]
            with lock, open(OUT, "ab") as out:
                out.write(msg.replace(b"\n", b"\\n") + b"\n")


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", PORT))
listener.listen(16)
n = 0
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn, n < RESETS), daemon=True).start()
    n += 1
