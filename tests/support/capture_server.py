#!/usr/bin/env python3
"""A capture server for vigil's paging tests: a real HTTP/1.1 server standing in for the central
systems vigil pages (PagerDuty, Grafana OnCall, a status page, webhooks) and for the receiver that
Alertmanager notifies. Every request is appended, as one JSON line, to the capture file:

  {"t": epoch float (when the request was read), "method", "path", "headers": {}, "body": text,
   "json": parsed or null, "answered": status (or "hang"), "mode": the fault mode that answered
   it, "reply": the JSON answered (null for "hang"), "client": the peer's address}
(In mode "slow", "answered" is what is sent after the delay: the client may have given up.)

Default answers:
  POST .../v2/enqueue, .../v2/change/enqueue   202 {"status":"success","message":"Event processed",
                                                    "dedup_key": the request's, or a new one}
  POST .../v1/pages/PAGE/incidents             201 {"id": a new id, "page_id", "name", "status", ...}
  PATCH .../v1/pages/PAGE/incidents/ID         200 {"id": ID, "page_id", "name", "status", ...}
  anything else                                200 {}

Control endpoints (never captured):
  POST /_mode  {"path": "/pd", "mode": "ok|500|429|slow|hang|400", "retry_after": "2",
                "slow_ms": 3000, "count": N}
        applies to requests whose path starts with "path" (the longest matching prefix wins);
        "count": only the next N such requests, then back to ok. "hang" reads the request and never
        answers (until the client gives up). "slow" answers as "ok" after slow_ms.
  GET  /_modes      the modes in force
  GET  /_captured   the capture file's lines as a JSON array
  POST /_reset      empties the capture file and clears every mode
  GET  /_health     200 "ok"

Usage: capture_server.py --listen ADDR:PORT --out FILE
"""

import argparse
import http.server
import json
import select
import sys
import threading
import time
import uuid

HANG_MAX_SECONDS = 600


class State:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()
        self.modes = {}  # path prefix -> {"mode", "retry_after", "slow_ms", "count"}
        self.file = open(out, "a", encoding="utf-8")
        self.stopping = threading.Event()

    def record(self, entry):
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False)
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()

    def captured(self):
        with self.lock:
            self.file.flush()
            with open(self.out, encoding="utf-8") as f:
                return [json.loads(l) for l in f if l.strip()]

    def reset(self):
        with self.lock:
            self.file.close()
            self.file = open(self.out, "w", encoding="utf-8")
            self.modes.clear()

    # The fault mode for PATH (consuming one of its "count"), or None for "ok".
    def take_mode(self, path):
        with self.lock:
            best = None
            for prefix in self.modes:
                if path.startswith(prefix) and (best is None or len(prefix) > len(best)):
                    best = prefix
            if best is None:
                return None
            m = dict(self.modes[best])
            if m.get("count") is not None:
                self.modes[best]["count"] -= 1
                if self.modes[best]["count"] <= 0:
                    del self.modes[best]
            return None if m["mode"] == "ok" else m


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vigil-capture/1"
    state: State = None  # set by main()

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def answer(self, status, obj=None, headers=None, text=None):
        body = (text if text is not None else json.dumps(obj if obj is not None else {})).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if text is not None else "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_PATCH(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def do_HEAD(self):
        self.handle_any()

    def handle_any(self):
        t = time.time()
        raw = self.read_body()
        path = self.path
        if path.startswith("/_"):
            return self.control(path, raw)
        text = raw.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text) if text.strip() else None
        except ValueError:
            parsed = None
        mode = self.state.take_mode(path)
        kind = mode["mode"] if mode else "ok"
        if kind in ("ok", "slow"):
            status, obj = self.default_answer(path, parsed)
        elif kind == "hang":
            status, obj = "hang", None
        elif kind == "429":
            status, obj = 429, {"status": "throttle event", "message": "Requests for this service are arriving too quickly"}
        elif kind == "500":
            status, obj = 500, {"status": "error", "message": "internal server error (capture fault mode)"}
        elif kind == "400":
            status, obj = 400, {"status": "invalid event", "message": "Event object is invalid",
                                "errors": ["capture fault mode: 400"]}
        else:
            status, obj = 500, {"status": "error", "message": "unknown capture mode " + kind}
        self.state.record({
            "t": t, "method": self.command, "path": path, "headers": dict(self.headers.items()),
            "body": text, "json": parsed, "answered": status, "mode": kind, "reply": obj,
            "client": self.client_address[0],
        })
        if kind == "hang":
            return self.hang()
        if kind == "slow":
            time.sleep(int(mode.get("slow_ms", 3000)) / 1000.0)
        headers = {}
        if kind == "429" and mode.get("retry_after") is not None:
            headers["Retry-After"] = str(mode["retry_after"])
        self.answer(status, obj, headers)

    # Never answers: waits until the client closes the connection (or the server stops).
    def hang(self):
        self.close_connection = True
        deadline = time.time() + HANG_MAX_SECONDS
        sock = self.connection
        while time.time() < deadline and not self.state.stopping.is_set():
            r, _, _ = select.select([sock], [], [], 0.5)
            if r:
                try:
                    if not sock.recv(4096, 0):
                        return
                except OSError:
                    return

    def default_answer(self, path, req):
        req = req if isinstance(req, dict) else {}
        bare = path.split("?")[0].rstrip("/")
        parts = bare.split("/")
        if bare.endswith("/v2/enqueue") or bare.endswith("/v2/change/enqueue"):
            dedup = req.get("dedup_key") or uuid.uuid4().hex
            msg = "Change event processed" if "/change/" in bare else "Event processed"
            return 202, {"status": "success", "message": msg, "dedup_key": dedup}
        # .../v1/pages/PAGE/incidents[/ID]
        if "pages" in parts:
            i = len(parts) - 1 - parts[::-1].index("pages")
            rest = parts[i + 1:]
            inc = req.get("incident") if isinstance(req.get("incident"), dict) else {}
            if len(rest) == 2 and rest[1] == "incidents" and self.command == "POST":
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                return 201, {"id": uuid.uuid4().hex[:12], "page_id": rest[0],
                             "name": inc.get("name"), "status": inc.get("status", "investigating"),
                             "impact": inc.get("impact_override", "none"), "created_at": now,
                             "updated_at": now, "shortlink": "http://stspg.io/capture"}
            if len(rest) == 3 and rest[1] == "incidents" and self.command in ("PATCH", "PUT"):
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                return 200, {"id": rest[2], "page_id": rest[0], "name": inc.get("name"),
                             "status": inc.get("status"), "updated_at": now}
        return 200, {}

    def control(self, path, raw):
        st = self.state
        if path == "/_health":
            return self.answer(200, text="ok\n")
        if path == "/_captured":
            return self.answer(200, st.captured())
        if path == "/_modes":
            with st.lock:
                return self.answer(200, dict(st.modes))
        if path == "/_reset" and self.command == "POST":
            st.reset()
            return self.answer(200, {})
        if path == "/_mode" and self.command == "POST":
            try:
                req = json.loads(raw.decode() or "{}")
                prefix = req["path"]
                mode = str(req.get("mode", "ok"))
                if mode not in ("ok", "500", "429", "slow", "hang", "400"):
                    raise ValueError("unknown mode " + mode)
                m = {"mode": mode}
                if req.get("retry_after") is not None:
                    m["retry_after"] = str(req["retry_after"])
                if req.get("slow_ms") is not None:
                    m["slow_ms"] = int(req["slow_ms"])
                if req.get("count") is not None:
                    m["count"] = int(req["count"])
            except (ValueError, KeyError, TypeError) as e:
                return self.answer(400, {"error": str(e)})
            with st.lock:
                if mode == "ok" and m.get("count") is None:
                    st.modes.pop(prefix, None)
                else:
                    st.modes[prefix] = m
            return self.answer(200, m)
        return self.answer(404, {"error": "unknown control endpoint " + path})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True, help="ADDR:PORT")
    ap.add_argument("--out", required=True, help="the capture file (JSON lines, appended)")
    a = ap.parse_args()
    host, _, port = a.listen.rpartition(":")
    Handler.state = State(a.out)
    srv = Server((host.strip("[]"), int(port)), Handler)
    sys.stderr.write("capture server on %s, writing %s\n" % (a.listen, a.out))
    sys.stderr.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        Handler.state.stopping.set()
        srv.server_close()


if __name__ == "__main__":
    main()
