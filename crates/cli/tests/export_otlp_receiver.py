"""An OTLP/HTTP logs receiver for crates/cli/tests/export.rs.

Decodes each POST with opentelemetry-proto (the real protobuf) and appends
one JSON line per log record to OUT. The file MODE (re-read on every
request) picks the answer: `ok` (200), `500`, or `slow` (answer after 2 s).
Usage: python export_otlp_receiver.py PORT OUT MODE
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

PORT, OUT, MODE = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(MODE) as f:
            mode = f.read().strip()
        if mode == "slow":
            time.sleep(2)
        if mode == "500" or self.path != "/v1/logs" or self.headers["Content-Type"] != "application/x-protobuf":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        request = ExportLogsServiceRequest()
        request.ParseFromString(body)
        with open(OUT, "a") as out:
            for rl in request.resource_logs:
                resource = {kv.key: value(kv.value) for kv in rl.resource.attributes}
                for sl in rl.scope_logs:
                    for rec in sl.log_records:
                        out.write(json.dumps({
                            "resource": resource,
                            "scope": sl.scope.name,
                            "time_unix_nano": rec.time_unix_nano,
                            "severity_number": rec.severity_number,
                            "severity_text": rec.severity_text,
                            "body": value(rec.body),
                            "attributes": {kv.key: value(kv.value) for kv in rec.attributes},
                        }) + "\n")
        answer = ExportLogsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
