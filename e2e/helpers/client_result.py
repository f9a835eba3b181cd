"""What the cloud client scripts share: one attempt, one JSON line.

`run(attempt)` calls `attempt(mode, out)` with the mode named on the command
line; `attempt` records what it found in `out` (`ok` and the rest). The line
printed is `out` with the mode, how long it took and, when the client raised,
`ok: false` and the client's own error type.
"""
import json
import sys
import time


def run(attempt) -> None:
    mode = sys.argv[1]
    started = time.monotonic()
    out = {"mode": mode}
    try:
        attempt(mode, out)
    except Exception as e:  # the client's own error type is the result
        out["ok"] = False
        out["error_type"] = type(e).__name__
    out["took"] = round(time.monotonic() - started, 3)
    print(json.dumps(out))
