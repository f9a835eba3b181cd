"""AWS's own Python credential code, unchanged, as a workload runs it.

Usage: aws_client.py botocore|boto3
Prints one JSON line: {"ok": bool, "took": seconds, "error_type": ..., "method": ...}.
No endpoint override: botocore goes to 169.254.169.254 as on an EC2 instance.
The access key is never printed (only that one was found and its prefix).
"""
from client_result import run


def attempt(mode: str, out: dict) -> None:
    if mode == "botocore":
        from botocore.credentials import InstanceMetadataFetcher, InstanceMetadataProvider

        provider = InstanceMetadataProvider(
            iam_role_fetcher=InstanceMetadataFetcher(timeout=1, num_attempts=1)
        )
        creds = provider.load()
        out["method"] = getattr(creds, "method", None)
    elif mode == "boto3":
        import boto3

        creds = boto3.Session(region_name="eu-west-1").get_credentials()
        out["method"] = getattr(creds, "method", None)
    else:
        raise SystemExit(f"unknown mode {mode}")
    frozen = creds.get_frozen_credentials() if creds else None
    out["ok"] = bool(frozen and frozen.access_key and frozen.secret_key and frozen.token)
    if out["ok"]:
        out["key_prefix"] = frozen.access_key[:4]


run(attempt)
