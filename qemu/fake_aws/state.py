"""The fake's state: instances (with credentials and the signed identity
blob), Auto Scaling groups, the request log, injected faults, and one IMDS
listener per instance. Written to DIR/state.json atomically by the main
process only (the --imds-stdio processes just read it)."""

from __future__ import annotations

import base64
import collections
import datetime
import hmac
import http.server
import ipaddress
import json
import os
import re
import secrets
import sys
import threading
import uuid

from .common import (DEFAULT_ACCOUNT, DEFAULT_ARCH, DEFAULT_CRED_TTL, DEFAULT_GROUP, DEFAULT_IMAGE,
                     DEFAULT_INSTANCE_TYPE, DEFAULT_REGION, DEFAULT_ROLE, IMDS_STDIO_REQUESTS, STATE_FILE,
                     ApiError, Conflict, ThreadingServer, atomic_write, iso, iso_ms, parse_iso, rand_upper,
                     utcnow)
from .ec2 import EC2_STATE_CODES, INSTANCE_ID_RE
from .identity import TestCA, identity_document
from .imds import IMDSHandler, TokenMinter


class Fake:
    """Instances, groups, request log, faults and IMDS listeners of one state
    directory; every change is saved to state.json at once."""

    def __init__(self, state_dir: str, reset: bool = False):
        self.dir = os.path.abspath(state_dir)
        os.makedirs(self.dir, exist_ok=True)
        self.lock = threading.RLock()
        self.ca = TestCA(self.dir)
        self.minter = TokenMinter(self.dir, create=True)
        self.instances: dict[str, dict] = {}
        self.groups: dict[str, dict] = {}
        self.config = {"pageSize": {}}
        self.faults: list[dict] = []
        self.log: collections.deque = collections.deque(maxlen=20000)
        self.seq = 0
        self.imds_servers: dict[str, http.server.ThreadingHTTPServer] = {}
        self.ports = {}
        path = os.path.join(self.dir, STATE_FILE)
        if os.path.exists(path) and not reset:
            with open(path) as f:
                st = json.load(f)
            self.instances = st.get("instances", {})
            self.groups = st.get("groups", {})
            self.config = st.get("config", self.config)

    # ---- persistence & log

    def save(self):
        with self.lock:
            data = json.dumps({"version": 1, "ports": self.ports, "instances": self.instances,
                               "groups": self.groups, "config": self.config}, indent=1).encode()
            atomic_write(os.path.join(self.dir, STATE_FILE), data)

    def record(self, entry: dict):
        with self.lock:
            self.seq += 1
            entry = {"seq": self.seq, "time": iso(utcnow()), **entry}
            self.log.append(entry)

    def requests(self) -> list[dict]:
        with self.lock:
            entries = list(self.log)
        path = os.path.join(self.dir, IMDS_STDIO_REQUESTS)
        try:
            with open(path) as f:
                for line in f:
                    try:
                        entries.append(json.loads(line))
                    except ValueError:
                        pass
        except FileNotFoundError:
            pass
        return entries

    def clear_requests(self):
        with self.lock:
            self.log.clear()
        try:
            os.unlink(os.path.join(self.dir, IMDS_STDIO_REQUESTS))
        except FileNotFoundError:
            pass

    # ---- instances

    @staticmethod
    def new_credentials(ttl: int) -> dict:
        now = utcnow()
        return {
            "AccessKeyId": "ASIA" + rand_upper(16),
            "SecretAccessKey": base64.b64encode(secrets.token_bytes(30)).decode(),
            "Token": "IQoJb3JpZ2luX2VjE" + base64.b64encode(secrets.token_bytes(96)).decode(),
            "LastUpdated": iso(now),
            "Expiration": iso(now + datetime.timedelta(seconds=ttl)),
        }

    def ensure_group(self, name: str, account: str, region: str, **kw) -> dict:
        key = f"{account}/{region}/{name}"
        g = self.groups.get(key)
        if g is None:
            g = {"name": name, "accountId": account, "region": region,
                 "createdTime": iso_ms(utcnow()), "uuid": str(uuid.uuid4()),
                 "minSize": 0, "maxSize": 10, "desiredCapacity": None}
            self.groups[key] = g
        for k in ("minSize", "maxSize", "desiredCapacity"):
            if kw.get(k) is not None:
                g[k] = int(kw[k])
        return g

    def resign(self, inst: dict):
        if inst.get("identityRsa2048") is not None:
            inst["rsa2048"] = inst["identityRsa2048"]
        else:
            inst["rsa2048"] = base64.b64encode(self.ca.sign(identity_document(inst))).decode()

    DOC_KEYS = ("privateIp", "imageId", "accountId", "region", "instanceType", "architecture",
                "availabilityZone", "pendingTime", "identityDocument", "identityRsa2048")
    MUTABLE = DOC_KEYS + ("lifecycleState", "healthStatus", "userData", "groupName", "roleName",
                          "state", "credentialsTtlSeconds")

    def _validate(self, inst: dict):
        try:
            ipaddress.IPv4Address(inst["privateIp"])
        except (ValueError, KeyError, TypeError):
            raise ValueError("privateIp must be an IPv4 address")
        if not INSTANCE_ID_RE.match(inst["instanceId"]):
            raise ValueError("instanceId must look like i-0123456789abcdef0")
        if not re.fullmatch(r"\d{12}", inst["accountId"]):
            raise ValueError("accountId must be 12 digits")
        if inst["state"] not in EC2_STATE_CODES:
            raise ValueError(f"state must be one of {sorted(EC2_STATE_CODES)}")
        if inst["userData"] is not None and not isinstance(inst["userData"], str):
            raise ValueError("userData must be a string or null")
        if inst.get("identityRsa2048") is not None:
            base64.b64decode(inst["identityRsa2048"], validate=True)

    def add_instance(self, body: dict) -> dict:
        with self.lock:
            iid = body.get("instanceId") or ("i-" + secrets.token_hex(9)[:17])
            if iid in self.instances:
                raise Conflict(f"instance {iid} exists")
            region = body.get("region") or DEFAULT_REGION
            inst = {
                "instanceId": iid,
                "privateIp": body.get("privateIp"),
                "imageId": body.get("imageId") or DEFAULT_IMAGE,
                "accountId": body.get("accountId") or DEFAULT_ACCOUNT,
                "region": region,
                "availabilityZone": body.get("availabilityZone") or region + "a",
                "instanceType": body.get("instanceType") or DEFAULT_INSTANCE_TYPE,
                "architecture": body.get("architecture") or DEFAULT_ARCH,
                "pendingTime": body.get("pendingTime") or iso(utcnow()),
                "groupName": body.get("groupName", DEFAULT_GROUP),
                "lifecycleState": body.get("lifecycleState") or "InService",
                "healthStatus": body.get("healthStatus") or "Healthy",
                "state": body.get("state") or "running",
                "userData": body.get("userData"),
                "roleName": body.get("roleName", DEFAULT_ROLE),
                "credentialsTtlSeconds": int(body.get("credentialsTtlSeconds") or DEFAULT_CRED_TTL),
                "identityDocument": body.get("identityDocument"),
                "identityRsa2048": body.get("identityRsa2048"),
                "imdsBind": body.get("imdsBind") or "127.0.0.1",
                "imdsPort": int(body.get("imdsPort") or 0),
                "imds": body.get("imds", True),
                "credentials": None,
                "previousCredentials": [],
            }
            self._validate(inst)
            if inst["roleName"]:
                inst["credentials"] = self.new_credentials(inst["credentialsTtlSeconds"])
            self.resign(inst)
            if inst["imds"]:
                self.start_imds(inst)  # raises OSError if the port is taken
            self.instances[iid] = inst
            if inst["groupName"]:
                self.ensure_group(inst["groupName"], inst["accountId"], inst["region"])
            self.save()
            return dict(inst)

    def patch_instance(self, iid: str, body: dict) -> dict:
        with self.lock:
            inst = self.instances.get(iid)
            if inst is None:
                raise LookupError(iid)
            unknown = set(body) - set(self.MUTABLE) - {"rotateCredentials"}
            if unknown:
                raise ValueError(f"unknown or immutable fields: {sorted(unknown)}")
            new = dict(inst)
            new.update({k: body[k] for k in self.MUTABLE if k in body})
            self._validate(new)
            if "roleName" in body and body["roleName"] != inst.get("roleName"):
                new["previousCredentials"] = []
                new["credentials"] = (self.new_credentials(new["credentialsTtlSeconds"])
                                      if new["roleName"] else None)
            elif body.get("rotateCredentials") and new["roleName"]:
                self._rotate(new)
            if any(k in body for k in self.DOC_KEYS):
                self.resign(new)
            if new["groupName"]:
                self.ensure_group(new["groupName"], new["accountId"], new["region"])
            inst.clear()
            inst.update(new)
            self.save()
            return dict(inst)

    def _rotate(self, inst: dict):
        if inst.get("credentials"):
            inst["previousCredentials"] = [inst["credentials"]] + inst.get("previousCredentials", [])[:2]
        inst["credentials"] = self.new_credentials(inst["credentialsTtlSeconds"])

    def delete_instance(self, iid: str):
        with self.lock:
            if iid not in self.instances:
                raise LookupError(iid)
            del self.instances[iid]
            srv = self.imds_servers.pop(iid, None)
            self.save()
        if srv is not None:
            threading.Thread(target=lambda: (srv.shutdown(), srv.server_close()), daemon=True).start()

    def housekeeping(self):
        """Rotate credentials a quarter of their lifetime before expiry (the old
        ones stay valid until they expire, like the real IMDS)."""
        with self.lock:
            changed = False
            now = utcnow()
            for inst in self.instances.values():
                c = inst.get("credentials")
                if c:
                    left = (parse_iso(c["Expiration"]) - now).total_seconds()
                    if left < inst["credentialsTtlSeconds"] / 4:
                        self._rotate(inst)
                        changed = True
                prev = [p for p in inst.get("previousCredentials", []) if parse_iso(p["Expiration"]) > now]
                if prev != inst.get("previousCredentials", []):
                    inst["previousCredentials"] = prev
                    changed = True
            if changed:
                self.save()

    def find_credentials(self, akid: str):
        with self.lock:
            for inst in self.instances.values():
                for c in [inst.get("credentials")] + inst.get("previousCredentials", []):
                    if c and hmac.compare_digest(c["AccessKeyId"], akid):
                        return dict(inst), dict(c)
        return None, None

    def public_view(self, inst: dict) -> dict:
        v = {k: val for k, val in inst.items() if k not in ("rsa2048",)}
        return v

    # ---- IMDS listeners

    def start_imds(self, inst: dict):
        fake = self

        class H(IMDSHandler):
            instance_id = inst["instanceId"]
            minter = fake.minter
            lookup = staticmethod(lambda iid: fake.instances.get(iid))
            record = staticmethod(fake.record)

        srv = ThreadingServer((inst["imdsBind"], inst["imdsPort"]), H)
        inst["imdsPort"] = srv.server_address[1]
        self.imds_servers[inst["instanceId"]] = srv
        threading.Thread(target=srv.serve_forever, name=f"imds-{inst['instanceId']}", daemon=True).start()

    def restart_imds_listeners(self):
        for inst in list(self.instances.values()):
            if inst.get("imds", True):
                try:
                    self.start_imds(inst)
                except OSError as e:
                    print(f"fake_aws: IMDS for {inst['instanceId']} on port {inst['imdsPort']}: {e};"
                          " using a fresh port", file=sys.stderr)
                    inst["imdsPort"] = 0
                    self.start_imds(inst)

    # ---- query API

    def take_fault(self, action: str):
        """The ApiError of the next injected fault for `action`, if any (used up)."""
        with self.lock:
            for f in self.faults:
                if f["action"] in (action, "*") and f["count"] > 0:
                    f["count"] -= 1
                    if f["count"] == 0:
                        self.faults.remove(f)
                    return ApiError(int(f.get("status", 400)), f.get("code", "Throttling"),
                                    f.get("message", "Rate exceeded"), sender=int(f.get("status", 400)) < 500)
        return None

    def visible(self, caller: dict, region: str) -> list[dict]:
        """Copies of the instances of the caller's account in `region`, by id."""
        with self.lock:
            return sorted((dict(i) for i in self.instances.values()
                           if i["accountId"] == caller["accountId"] and i["region"] == region),
                          key=lambda i: i["instanceId"])
