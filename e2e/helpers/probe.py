"""Walk-around probes: try to reach the platform other than through the gate.

Run inside the VM or container namespace, as whichever user the harness
picks. Prints ONE JSON line, always exits 0 (the harness judges the result):

    probe.py tcp HOST PORT          -> {"result": "answered"|"refused"|"timeout"|"reset"|"error", ...}
    probe.py udp HOST PORT          -> {"result": "answered"|"no-answer"|"refused"|"error", ...}
    probe.py stream HOST PORT FLAG  -> {"result": "cut"|"open"|"not-connected", ...}

`stream` connects and reads a server that keeps sending. When FLAG (a file)
appears -- the harness creates it after applying gatehouse -- it watches for
WATCH seconds more: "open" if data still arrived during the last QUIET
seconds of that window, "cut" if the stream went quiet or failed. Before
connecting it writes FLAG + ".connected" so the harness knows the connection
predates the firewall.
"""

import json
import os
import socket
import sys
import time

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 5
UDP_WAIT = 3
WATCH = 8.0
QUIET = 4.0
WAIT_FOR_FLAG = 60


def out(**fields):
    print(json.dumps(fields), flush=True)
    return 0


def tcp(host, port):
    try:
        s = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except ConnectionRefusedError:
        return out(result="refused")
    except socket.timeout:
        return out(result="timeout", stage="connect")
    except OSError as e:
        return out(result="error", stage="connect", message=str(e))
    s.settimeout(READ_TIMEOUT)
    try:
        data = s.recv(64)
    except socket.timeout:
        return out(result="timeout", stage="read")
    except ConnectionResetError:
        return out(result="reset")
    except OSError as e:
        return out(result="error", stage="read", message=str(e))
    finally:
        s.close()
    return out(result="answered", first=data.decode(errors="replace").strip())


def udp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(UDP_WAIT)
    try:
        s.connect((host, port))  # connected: an ICMP error surfaces as refused
        s.send(b"hello platform\n")
        data = s.recv(2048)
    except socket.timeout:
        return out(result="no-answer")
    except ConnectionRefusedError:
        return out(result="refused")
    except OSError as e:
        return out(result="error", message=str(e))
    finally:
        s.close()
    return out(result="answered", first=data.decode(errors="replace").strip())


def stream(host, port, flag):
    try:
        s = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except OSError as e:
        return out(result="not-connected", message=str(e))
    with open(flag + ".connected", "w") as f:
        f.write(f"{os.getpid()}\n")
    s.settimeout(0.2)
    before = after = 0
    flag_at = last_data = None
    error = None
    give_up = time.monotonic() + WAIT_FOR_FLAG
    while True:
        now = time.monotonic()
        if flag_at is None:
            if os.path.exists(flag):
                flag_at = now
            elif now > give_up:
                return out(result="no-flag", before=before)
        elif now - flag_at >= WATCH:
            break
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        except OSError as e:
            error = str(e)
            break
        if not data:
            error = "eof"
            break
        if flag_at is None:
            before += len(data)
        else:
            after += len(data)
            last_data = time.monotonic()
    s.close()
    quiet_from = None if last_data is None else round(last_data - flag_at, 2)
    still_flowing = last_data is not None and flag_at is not None and last_data - flag_at > WATCH - QUIET
    result = "open" if still_flowing and error is None else "cut"
    return out(result=result, before=before, after=after, last_data_s=quiet_from, error=error)


def main(argv):
    try:
        mode = argv[1]
        if mode == "tcp":
            return tcp(argv[2], int(argv[3]))
        if mode == "udp":
            return udp(argv[2], int(argv[3]))
        if mode == "stream":
            return stream(argv[2], int(argv[3]), argv[4])
    except (IndexError, ValueError):
        pass
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
