"""Google's own Python auth library (google-auth), unchanged, as a workload runs it.

Usage: gcp_client.py default|compute|idtoken
Prints one JSON line: {"ok": bool, "took": seconds, "error_type": ..., "prefix": ...}.
No endpoint override: google-auth probes 169.254.169.254 and then asks
metadata.google.internal, which resolves to that address as on a GCE VM.
No token is ever printed (only that one was found, its prefix, an ID token's aud).
"""
import base64
import json

from client_result import run

AUDIENCE = "https://api.example.com"


def attempt(mode: str, out: dict) -> None:
    import google.auth
    import google.auth.compute_engine
    from google.auth.transport.requests import Request

    request = Request()
    if mode == "default":
        creds, project = google.auth.default()
        out["project"] = project
        out["type"] = type(creds).__module__ + "." + type(creds).__name__
        creds.refresh(request)
    elif mode == "compute":
        creds = google.auth.compute_engine.Credentials()
        creds.refresh(request)
    elif mode == "idtoken":
        creds = google.auth.compute_engine.IDTokenCredentials(
            request, target_audience=AUDIENCE, use_metadata_identity_endpoint=True
        )
        creds.refresh(request)
        payload = creds.token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        out["aud"] = claims.get("aud")
    else:
        raise SystemExit(f"unknown mode {mode}")
    out["ok"] = bool(creds.token)
    if out["ok"]:
        out["prefix"] = creds.token[:4]


run(attempt)
