"""Start moto in-process on 127.0.0.1 for the Rust test harness.

Usage: python3 moto_launcher.py [PLUGIN.py]

Prints "READY <moto-port> <control-port>" once both servers answer, then runs
until its standard input closes (the Rust harness holds the other end, so the
server dies with the test process even when the test binary is killed).

The control server answers POST /<operation> with a JSON body by calling
`handle(operation, body)` from the optional plugin file, which returns a
JSON-serialisable value. Two operations are the harness's own, with or
without a plugin: `harness/start_recording` (`{"path": FILE}`: moto's
request recorder writes every request from now on to FILE) and
`harness/recorded_actions` (`{"user_agent": TEXT}` optional: the IAM-style
`service:Action` names of the recorded requests whose user agent contains
TEXT, sorted and unique), so a test can compare what a
program really called with the IAM policy it claims to need. Plugins reach moto's in-process backends (for
example `moto.ecs.models.ecs_backends`) to simulate what moto does not do by
itself, such as ECS deployments progressing or failing.
"""

import importlib.util
import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from moto.server import ThreadedMotoServer


def load_plugin(path):
    spec = importlib.util.spec_from_file_location("moto_plugin", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recorded_actions(user_agent=None):
    """`service:Action` of every request in moto's recording (only those
    whose User-Agent contains `user_agent`, when given)."""
    import base64
    import re
    from urllib.parse import parse_qs

    from moto.moto_api import recorder

    prefixes = {
        "AmazonEC2ContainerServiceV20141113": "ecs",
        "DynamoDB_20120810": "dynamodb",
        "DynamoDBStreams_20120810": "dynamodb",
    }
    actions = set()
    for line in recorder.download_recording().splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        headers = {k.lower(): v for k, v in entry.get("headers", {}).items()}
        if user_agent and user_agent not in headers.get("user-agent", "") + headers.get(
            "x-amz-user-agent", ""
        ):
            continue
        target = headers.get("x-amz-target")
        if target and "." in target:
            prefix, action = target.split(".", 1)
            actions.add(f"{prefixes.get(prefix, prefix)}:{action}")
            continue
        scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", headers.get("authorization", ""))
        service = scope.group(1) if scope else "unknown"
        body = entry.get("body") or ""
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode("utf-8", "replace")
        action = parse_qs(body).get("Action", [None])[0]
        if action:
            actions.add(f"{service}:{action}")
    return sorted(actions)


def harness_operation(operation, body):
    """The harness's own control operations; None when not one of them."""
    if operation == "harness/start_recording":
        from moto.moto_api import recorder

        recorder._location = body["path"]
        recorder.reset_recording()
        recorder.start_recording()
        return {"recording": body["path"]}
    if operation == "harness/recorded_actions":
        return {"actions": _recorded_actions(body.get("user_agent"))}
    return None


def main():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    plugin = load_plugin(sys.argv[1]) if len(sys.argv) > 1 else None

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    _, moto_port = moto.get_host_and_port()

    class Control(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            operation = self.path.strip("/")
            try:
                body = json.loads(raw or b"{}")
                result = harness_operation(operation, body)
                if result is None:
                    if plugin is None:
                        raise ValueError("no plugin loaded")
                    result = plugin.handle(operation, body)
                payload, status = json.dumps(result, default=str).encode(), 200
            except Exception as exc:  # report every failure to the test
                payload, status = json.dumps({"error": repr(exc)}).encode(), 500
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    control = ThreadingHTTPServer(("127.0.0.1", 0), Control)
    threading.Thread(target=control.serve_forever, daemon=True).start()

    print(f"READY {moto_port} {control.server_address[1]}", flush=True)
    try:
        sys.stdin.read()
    finally:
        control.shutdown()
        moto.stop()


if __name__ == "__main__":
    main()
