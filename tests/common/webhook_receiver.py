"""A real HTTP receiver for postdesk's webhooks (tests/webhooks.rs).

Usage: webhook_receiver.py DIR [PORT]. Listens on 127.0.0.1:PORT (0: any
free port), prints {"port": N} on one line, then answers every POST by the
mode written in DIR/mode (read at each request): a number is the status to
answer (200, 503, 410, ...); "stall" reads the request and never answers.
Each request is appended to DIR/requests.jsonl as one JSON line, before it
is answered: {"path", "headers", "body", "status"}.
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1]
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 0
LOCK = threading.Lock()


def mode():
    try:
        with open(os.path.join(DIR, "mode")) as f:
            return f.read().strip() or "200"
    except FileNotFoundError:
        return "200"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        m = mode()
        record = {
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
            "status": m,
        }
        with LOCK:
            with open(os.path.join(DIR, "requests.jsonl"), "a") as f:
                f.write(json.dumps(record) + "\n")
        if m == "stall":
            time.sleep(120)
            return
        status = int(m)
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
server.daemon_threads = True
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
