"""Ask a real Azure client library for a managed-identity token, once.

Run by crates/gate/tests/clients.rs as a test uid, with the gate's address in
AZURE_POD_IDENTITY_AUTHORITY_HOST; and by the e2e harness (e2e/run.sh) inside a
network namespace playing the VM with an empty environment — no endpoint
override at all: the clients talk to 169.254.169.254, which the kernel
redirects to the gate. Usage:

    client.py MODE RESOURCE CLIENT_ID

MODE is one of identity-sync, identity-async, msal, default-probe. Prints ONE
JSON line on stdout and exits 0 whatever the outcome, so the caller asserts on
the outcome rather than on a traceback:

    {"ok": true, "token_len": N, "expires_on": T, "responses": [...]}
    {"ok": false, "error_type": "...", "message": "...", "responses": [...]}

`responses` lists every HTTP answer the client saw, in order, as
{"status", "metadata" (whether the request carried `Metadata: true`), "ms"} —
never a body. The token itself is never printed: only its length.
"""

import asyncio
import json
import os
import sys
import time

# Variables that would send the clients somewhere other than the gate (App
# Service, Azure ML, Arc). The test clears the environment; this makes the
# script safe to run by hand too.
for _var in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT",
             "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "AZURE_CLIENT_ID",
             "AZURE_TOKEN_CREDENTIALS", "AZURE_FEDERATED_TOKEN_FILE"):
    os.environ.pop(_var, None)

# Bound every network wait: a hung gate must fail the test, not stall it.
READ_TIMEOUT = 15
NO_RETRIES = {"retry_total": 0, "read_timeout": READ_TIMEOUT}


class Recorder:
    """Collects what each HTTP exchange looked like, without its content."""

    def __init__(self):
        self.responses = []
        self._started = {}

    def _entry(self, status, metadata, started):
        ms = None if started is None else int((time.monotonic() - started) * 1000)
        self.responses.append({"status": status, "metadata": metadata, "ms": ms})

    # azure-core pipeline hooks (raw_request_hook / raw_response_hook).
    def on_request(self, request):
        self._started[id(request.http_request)] = time.monotonic()

    def on_response(self, response):
        req = response.http_request
        self._entry(response.http_response.status_code,
                    req.headers.get("Metadata") == "true",
                    self._started.pop(id(req), None))

    # requests' response hook (msal).
    def on_requests_response(self, resp, *args, **kwargs):
        self.responses.append({
            "status": resp.status_code,
            "metadata": resp.request.headers.get("Metadata") == "true",
            "ms": int(resp.elapsed.total_seconds() * 1000),
        })
        return resp

    def hooks(self):
        return {"raw_request_hook": self.on_request, "raw_response_hook": self.on_response}


def success(token, expires_on, rec):
    return {"ok": True, "token_len": len(token), "expires_on": int(expires_on),
            "responses": rec.responses}


def failure(error_type, message, rec):
    return {"ok": False, "error_type": error_type, "message": str(message),
            "responses": rec.responses}


def scope_of(resource):
    return resource.rstrip("/") + "/.default"


def identity_sync(resource, client_id, rec):
    from azure.identity import ManagedIdentityCredential

    with ManagedIdentityCredential(client_id=client_id, **NO_RETRIES, **rec.hooks()) as cred:
        token = cred.get_token(scope_of(resource))
    return success(token.token, token.expires_on, rec)


def identity_async(resource, client_id, rec):
    from azure.identity.aio import ManagedIdentityCredential

    async def run():
        async with ManagedIdentityCredential(client_id=client_id, **NO_RETRIES, **rec.hooks()) as cred:
            return await cred.get_token(scope_of(resource))

    token = asyncio.run(run())
    return success(token.token, token.expires_on, rec)


def msal_client(resource, client_id, rec):
    import msal
    import requests
    from msal import managed_identity as mi

    # msal switches to Azure Arc when /opt/azcmagent/bin/himds exists; then the
    # gate would never be asked, and the test would prove nothing.
    if mi.get_managed_identity_source() is not mi.DEFAULT_TO_VM:
        return failure("WrongSource", "msal does not see a plain VM (Arc agent or endpoint variables present)", rec)

    class BoundedSession(requests.Session):
        """requests without a timeout waits forever; msal passes none."""

        def request(self, *args, **kwargs):
            kwargs.setdefault("timeout", READ_TIMEOUT)
            return super().request(*args, **kwargs)

    session = BoundedSession()  # no HTTPAdapter retries are mounted: none happen
    session.hooks["response"].append(rec.on_requests_response)
    client = msal.ManagedIdentityClient(msal.UserAssignedManagedIdentity(client_id=client_id),
                                        http_client=session)
    now = time.time()
    result = client.acquire_token_for_client(resource=resource)
    if result.get("access_token"):
        return success(result["access_token"], now + int(result["expires_in"]), rec)
    # msal hands back the OAuth error as a dict; render it the way
    # azure-identity words the same dict: "(error) description".
    error = str(result.get("error", "unknown"))
    return failure(error, f"({error}) {result.get('error_description', '')}", rec)


def default_probe(resource, client_id, rec):
    from azure.identity import DefaultAzureCredential

    excluded = {name: True for name in (
        "exclude_environment_credential", "exclude_workload_identity_credential",
        "exclude_shared_token_cache_credential", "exclude_visual_studio_code_credential",
        "exclude_cli_credential", "exclude_powershell_credential",
        "exclude_developer_cli_credential", "exclude_interactive_browser_credential",
        "exclude_broker_credential")}
    cred = DefaultAzureCredential(managed_identity_client_id=client_id, **excluded,
                                  **NO_RETRIES, **rec.hooks())
    if len(cred.credentials) != 1:
        names = [type(c).__name__ for c in cred.credentials]
        return failure("ChainNotManagedIdentityOnly", f"credential chain is {names}", rec)
    imds = getattr(cred.credentials[0], "_credential", None)
    if type(imds).__name__ != "ImdsCredential" or not hasattr(imds, "_endpoint_available"):
        return failure("NotImds", f"managed identity resolved to {type(imds).__name__}", rec)
    # azure-identity skips its probe when AZURE_POD_IDENTITY_AUTHORITY_HOST is
    # set (it trusts the variable). Forget that trust so the probe runs exactly
    # as it does on a VM, where the endpoint is found by probing.
    imds._endpoint_available = None
    with cred:
        token = cred.get_token(scope_of(resource))
    out = success(token.token, token.expires_on, rec)
    out["probed"] = imds._endpoint_available is True
    return out


MODES = {
    "identity-sync": identity_sync,
    "identity-async": identity_async,
    "msal": msal_client,
    "default-probe": default_probe,
}


def main(argv):
    if len(argv) != 4 or argv[1] not in MODES:
        print(f"usage: {argv[0]} {{{','.join(MODES)}}} RESOURCE CLIENT_ID", file=sys.stderr)
        return 2
    # Without the variable the clients take their plain-VM path to
    # 169.254.169.254 (the e2e harness); the probe mode needs it, since its
    # point is to undo the trust azure-identity gives the variable.
    if argv[1] == "default-probe" and not os.environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST"):
        print("default-probe needs AZURE_POD_IDENTITY_AUTHORITY_HOST to name the gate", file=sys.stderr)
        return 2
    mode, resource, client_id = argv[1], argv[2], argv[3]
    rec = Recorder()
    try:
        out = MODES[mode](resource, client_id, rec)
    except Exception as exc:  # the test asserts on the kind and message
        out = failure(type(exc).__name__, exc, rec)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
