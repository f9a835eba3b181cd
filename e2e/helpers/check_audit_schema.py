"""Check every record of the given audit logs against docs/audit.schema.json.

Usage: check_audit_schema.py SCHEMA LOG...
Prints `ok N` (N records checked) or the first record that does not match,
with its file and line, and exits non-zero.
"""
import json
import sys

import jsonschema


def main() -> int:
    schema_path, *logs = sys.argv[1:]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    validator = jsonschema.Draft202012Validator(schema)
    checked = 0
    for log in logs:
        with open(log, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                record = json.loads(line)
                errors = sorted(validator.iter_errors(record), key=str)
                if errors:
                    print(f"{log}:{number}: {errors[0].message}")
                    return 1
                checked += 1
    if checked == 0:
        print("no records")
        return 1
    print(f"ok {checked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
