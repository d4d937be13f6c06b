"""fake_aws: a small fake of the AWS pieces VSSM's cluster attestation uses.

One process serves:
  * a control API (JSON over HTTP, 127.0.0.1:--control-port) to create, change
    and delete fake instances, sign arbitrary documents, read the request log;
  * one IMDSv2 listener per instance (127.0.0.1 on a fresh port by default);
  * the AWS query APIs autoscaling / ec2 / sts on --api-port, with SigV4
    verification against the temporary credentials handed out over IMDS.

`--imds-stdio ID` speaks IMDS for instance ID over stdin/stdout for one
connection (qemu guestfwd ... -cmd:), reading DIR/state.json.

Standard library + `cryptography` only. See README.md next to this file.
"""

from __future__ import annotations

import argparse
import base64
import http.server
import json
import os
import re
import signal
import sys
import threading
import traceback
import urllib.parse
import uuid

from . import autoscaling, ec2, sigv4, sts
from .common import DEFAULT_ACCOUNT, DEFAULT_REGION, ApiError, Conflict, ThreadingServer, atomic_write, xml
from .imds import run_imds_stdio
from .state import Fake

# The query API's services: action -> service name, and per service its API
# version and XML namespace.
SERVICES = {m.SERVICE: m for m in (autoscaling, ec2, sts)}
ACTIONS = {action: m.SERVICE for m in SERVICES.values() for action in m.ACTIONS}
API_VERSIONS = {name: m.VERSION for name, m in SERVICES.items()}
NAMESPACES = {name: m.NAMESPACE for name, m in SERVICES.items()}


class ApiHandler(http.server.BaseHTTPRequestHandler):
    """The query APIs on --api-port: the service from the Action, SigV4, faults,
    AWS-shaped XML answers and errors; every call goes to the request log."""

    protocol_version = "HTTP/1.1"
    server_version = "Server"

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        pass

    def _send(self, status: int, body: str, ctype: str = "text/xml"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", self._rid)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        fake: Fake = self.server.fake
        self._rid = str(uuid.uuid4())
        raw_path, _, raw_query = self.path.partition("?")
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return self._send(411, "Length Required", "text/plain")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        params = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if self.command == "POST" and ctype == "application/x-www-form-urlencoded":
            try:
                params.update(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                pass
        action = params.get("Action")
        host_service, host_region = sigv4.host_service_region(self.headers.get("Host"))
        service = ACTIONS.get(action or "") or host_service or "sts"
        entry = {"kind": "api", "method": self.command, "path": self.path, "host": self.headers.get("Host"),
                 "action": action, "service": service, "params": params,
                 "signedHeaders": None, "accessKeyId": None, "caller": None}
        try:
            if action is None:
                raise ApiError(400, "MissingAction", "Missing Action")
            if action not in ACTIONS or (host_service and host_service != ACTIONS[action]):
                raise ApiError(400, "InvalidAction", f"Could not find operation {action} for version {params.get('Version')}")
            m = re.search(r"SignedHeaders=([^,\s]+)", self.headers.get("Authorization") or "")
            entry["signedHeaders"] = m.group(1) if m else None
            m = re.search(r"Credential=([^/,\s]+)", self.headers.get("Authorization") or "")
            entry["accessKeyId"] = m.group(1) if m else None
            caller, _creds, region = sigv4.verify(fake.find_credentials, service, self.command, raw_path,
                                                  raw_query, self.headers, body, host_region)
            entry["caller"], entry["region"] = caller["instanceId"], region
            if params.get("Version") != API_VERSIONS[service]:
                raise ApiError(400, "InvalidAction",
                               f"Could not find operation {action} for version {params.get('Version')}")
            fault = fake.take_fault(action)
            if fault:
                raise fault
            result = SERVICES[service].ACTIONS[action](fake, params, caller, region, self._rid)
            if service == "ec2":
                out = f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{NAMESPACES[service]}">{result}</{action}Response>'
            else:
                out = (f'<{action}Response xmlns="{NAMESPACES[service]}">{result}'
                       f"<ResponseMetadata><RequestId>{self._rid}</RequestId></ResponseMetadata></{action}Response>")
            entry.update(status=200, errorCode=None)
            status = 200
        except ApiError as e:
            entry.update(status=e.status, errorCode=e.code, errorMessage=e.message, **e.debug)
            if service == "ec2":
                out = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                       f"<Response><Errors><Error><Code>{xml(e.code)}</Code><Message>{xml(e.message)}</Message>"
                       f"</Error></Errors><RequestID>{self._rid}</RequestID></Response>")
            else:
                out = (f'<ErrorResponse xmlns="{NAMESPACES[service]}"><Error>'
                       f"<Type>{'Sender' if e.sender else 'Receiver'}</Type><Code>{xml(e.code)}</Code>"
                       f"<Message>{xml(e.message)}</Message></Error><RequestId>{self._rid}</RequestId></ErrorResponse>")
            status = e.status
        except Exception as e:  # noqa: BLE001 -- a fake must keep serving
            traceback.print_exc()
            entry.update(status=500, errorCode="InternalFailure", errorMessage=repr(e))
            status, out = 500, ("<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>"
                                f"<Message>{xml(repr(e))}</Message></Error></ErrorResponse>")
        # Recorded before the answer goes out: a client that reads the log
        # right after its answer finds its request in it.
        fake.record(entry)
        self._send(status, out)

    do_POST = do_GET = _handle


class ControlHandler(http.server.BaseHTTPRequestHandler):
    """The JSON control API on --control-port (README.md: "Control API")."""

    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _json(self, status: int, obj):
        data = json.dumps(obj, indent=1).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _raw(self, status: int, data: bytes, ctype: str):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if not n:
            return {}
        obj = json.loads(self.rfile.read(n))
        if not isinstance(obj, dict):
            raise ValueError("body must be a JSON object")
        return obj

    def _handle(self):
        fake: Fake = self.server.fake
        url = urllib.parse.urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        q = dict(urllib.parse.parse_qsl(url.query))
        m = self.command
        try:
            body = self._body() if m in ("POST", "PATCH", "PUT") else {}
            if m == "GET" and parts in ([], ["health"]):
                return self._json(200, {"ok": True, "stateDir": fake.dir, **fake.ports,
                                        "caFile": fake.ca.crt_path})
            if parts == ["instances"] and m == "GET":
                with fake.lock:
                    return self._json(200, {"instances": [fake.public_view(i) for i in fake.instances.values()]})
            if parts == ["instances"] and m == "POST":
                return self._json(200, fake.public_view(fake.add_instance(body)))
            if len(parts) == 2 and parts[0] == "instances":
                iid = parts[1]
                if m == "GET":
                    with fake.lock:
                        if iid not in fake.instances:
                            raise LookupError(iid)
                        return self._json(200, fake.public_view(fake.instances[iid]))
                if m == "PATCH":
                    return self._json(200, fake.public_view(fake.patch_instance(iid, body)))
                if m == "DELETE":
                    fake.delete_instance(iid)
                    return self._json(200, {"deleted": iid})
            if parts == ["groups"] and m == "GET":
                with fake.lock:
                    return self._json(200, {"groups": list(fake.groups.values())})
            if parts == ["groups"] and m == "POST":
                with fake.lock:
                    if not body.get("name"):
                        raise ValueError("name required")
                    g = fake.ensure_group(body["name"], body.get("accountId") or DEFAULT_ACCOUNT,
                                          body.get("region") or DEFAULT_REGION, **body)
                    fake.save()
                    return self._json(200, g)
            if parts == ["sign"] and m == "POST":
                doc = body.get("document")
                if not isinstance(doc, str):
                    raise ValueError("document (string) required")
                sig = fake.ca.sign(doc.encode())
                return self._json(200, {"signature": base64.b64encode(sig).decode()})
            if parts == ["ca"] and m == "GET":
                return self._json(200, {"der": base64.b64encode(fake.ca.der).decode(), "pem": fake.ca.pem})
            if parts == ["ca.der"] and m == "GET":
                return self._raw(200, fake.ca.der, "application/pkix-cert")
            if parts == ["ca.pem"] and m == "GET":
                return self._raw(200, fake.ca.pem.encode(), "application/x-pem-file")
            if parts == ["requests"] and m == "GET":
                reqs = fake.requests()
                for k in ("kind", "action", "caller", "instanceId"):
                    if k in q:
                        reqs = [r for r in reqs if str(r.get(k)) == q[k]]
                if "since" in q:
                    reqs = [r for r in reqs if r.get("seq", 0) > int(q["since"])]
                return self._json(200, {"requests": reqs})
            if parts == ["requests"] and m == "DELETE":
                fake.clear_requests()
                return self._json(200, {"cleared": True})
            if parts == ["config"] and m in ("PUT", "PATCH"):
                with fake.lock:
                    if "pageSize" in body:
                        if not isinstance(body["pageSize"], dict):
                            raise ValueError("pageSize must be an object {Action: n}")
                        fake.config["pageSize"] = {k: int(v) for k, v in body["pageSize"].items() if v}
                    fake.save()
                    return self._json(200, fake.config)
            if parts == ["config"] and m == "GET":
                return self._json(200, fake.config)
            if parts == ["faults"] and m == "POST":
                if not body.get("action"):
                    raise ValueError("action required (or '*')")
                f = {"action": body["action"], "code": body.get("code", "Throttling"),
                     "message": body.get("message", "Rate exceeded"), "status": int(body.get("status", 400)),
                     "count": int(body.get("count", 1))}
                with fake.lock:
                    fake.faults.append(f)
                return self._json(200, f)
            if parts == ["faults"] and m == "DELETE":
                with fake.lock:
                    fake.faults.clear()
                return self._json(200, {"cleared": True})
            if parts == ["faults"] and m == "GET":
                with fake.lock:
                    return self._json(200, {"faults": list(fake.faults)})
            return self._json(404, {"error": f"no route {m} {url.path}"})
        except Conflict as e:
            return self._json(409, {"error": str(e)})
        except LookupError as e:
            return self._json(404, {"error": f"no such instance {e.args[0]}"})
        except (ValueError, TypeError) as e:
            return self._json(400, {"error": str(e)})
        except OSError as e:
            return self._json(400, {"error": f"listen failed: {e}"})
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            return self._json(500, {"error": repr(e)})

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state", required=True, help="state directory (CA, state.json, logs)")
    ap.add_argument("--control-port", type=int, default=0, help="control API port (0: ephemeral)")
    ap.add_argument("--control-bind", default="127.0.0.1")
    ap.add_argument("--api-port", type=int, default=0, help="AWS query API port (0: ephemeral)")
    ap.add_argument("--api-bind", default="127.0.0.1")
    ap.add_argument("--reset", action="store_true", help="forget instances/groups kept in state.json")
    ap.add_argument("--imds-stdio", metavar="INSTANCE_ID",
                    help="serve IMDS for this instance over stdin/stdout for one connection and exit")
    args = ap.parse_args(argv)

    if args.imds_stdio:
        return run_imds_stdio(args.state, args.imds_stdio)

    fake = Fake(args.state, reset=args.reset)
    control = ThreadingServer((args.control_bind, args.control_port), ControlHandler)
    api = ThreadingServer((args.api_bind, args.api_port), ApiHandler)
    control.fake = api.fake = fake
    fake.ports = {"controlPort": control.server_address[1], "apiPort": api.server_address[1]}
    with fake.lock:
        fake.restart_imds_listeners()
        fake.save()
    atomic_write(os.path.join(fake.dir, "ports.json"), json.dumps(fake.ports).encode(), 0o644)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = [threading.Thread(target=s.serve_forever, name=n, daemon=True)
               for s, n in ((control, "control"), (api, "api"))]
    for t in threads:
        t.start()
    print(f"fake_aws ready control={fake.ports['controlPort']} api={fake.ports['apiPort']} "
          f"state={fake.dir}", flush=True)

    while not stop.wait(15):
        try:
            fake.housekeeping()
        except Exception:
            traceback.print_exc()

    for s in [control, api] + list(fake.imds_servers.values()):
        s.shutdown()
        s.server_close()
    fake.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
