"""Both ends of a TCP socket passed over SCM_RIGHTS between two unrelated
processes, for the caller-identification tests (run as two test uids).

  recv NAME [REQUEST]   listen on the abstract unix socket NAME, take the
                        socket passed there, wait for the sender's word, then
                        write REQUEST on it (if given) and print the first line
                        of the answer.
  send NAME PORT MODE   connect to 127.0.0.1:PORT, pass the socket to NAME;
                        MODE "keep" keeps our copy, "close" closes it before
                        the receiver is told to go on.

Each prints a line as it gets along ("ready", "sent", "received"), then waits;
an alarm ends it after 20 s whatever happens.
"""
import signal
import socket
import sys
import time

signal.alarm(20)
role, name = sys.argv[1], "\0" + sys.argv[2]
if role == "send":
    port, mode = int(sys.argv[3]), sys.argv[4]
    s = socket.create_connection(("127.0.0.1", port))
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for _ in range(500):
        try:
            u.connect(name)
            break
        except OSError:
            time.sleep(0.01)
    socket.send_fds(u, [b"s"], [s.fileno()])
    if mode == "close":
        s.close()
    u.sendall(b"g")
    print("sent", flush=True)
else:
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.bind(name)
    u.listen(1)
    print("ready", flush=True)
    c, _ = u.accept()
    _, fds, _, _ = socket.recv_fds(c, 1, 1)
    s = socket.socket(fileno=fds[0])
    c.recv(1)
    print("received", flush=True)
    if len(sys.argv) > 3:
        s.sendall(sys.argv[3].encode())
        print(s.makefile("rb").readline().decode().rstrip(), flush=True)
time.sleep(30)
