"""A server on a just-in-time port: accepts connections and keeps sending a
line to each every 100 ms (as an SSH server sends output and keep-alives),
so a cut session shows as silence or a reset, never as an idle quiet one.

    jit_server.py ADDR PORT
"""

import socket
import sys
import threading
import time


def feed(conn):
    n = 0
    try:
        while True:
            n += 1
            conn.sendall(f"tick {n}\n".encode())
            time.sleep(0.1)
    except OSError:
        pass
    finally:
        conn.close()


def main(argv):
    family = socket.AF_INET6 if ":" in argv[1] else socket.AF_INET
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((argv[1], int(argv[2])))
    srv.listen(16)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=feed, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
