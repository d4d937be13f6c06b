"""Drives N keep-alive requests of one op against a `vssm dev` node for
scripts/bench-callgrind.sh: sends one warm-up request, resets the callgrind
counters, sends N requests and dumps. The keys (and grants) are vssm-bench's
(`vssm-bench --setup-only`, key names in bench/src/ops.rs; the dec-* ops decrypt
with the keys of `vssm-bench --setup-only --rotations N`, bench/src/rotation.rs,
a ciphertext made here first)."""
import sys, json, base64, http.client, socket, ssl, os
d, op, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=f"{d}/rpc.crt")
ctx.check_hostname = False
ctx.load_cert_chain(f"{d}/client.crt", f"{d}/client.key")
class C(http.client.HTTPSConnection):
    def connect(self):
        s = socket.create_connection((self.host, self.port), 600)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(s, server_hostname="VSSM")
c = C(os.environ.get("BIND", "127.0.0.1"), 8080, context=ctx, timeout=600)
def post(path, body):
    c.request("POST", "/REST/v1/" + path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse(); b = r.read()
    assert r.status == 200, (path, r.status, b[:200])
    return b
b64 = lambda x: base64.b64encode(x).decode()
reqs = {
    "aes": ("symmetric/encrypt", {"keyName": "bench-aes", "algorithm": "AES/GCM/NoPadding", "input": b64(os.urandom(1024))}),
    "hmac": ("hmac/create", {"keyName": "bench-hmac", "algorithm": "SHA256", "input": b64(os.urandom(64))}),
    "ecdsa": ("asymmetric/sign", {"keyName": "bench-ec", "algorithm": "SHA256withECDSA", "input": b64(os.urandom(64))}),
}
def batch(path, item, n=100):
    """A batch of `n` copies of `item`, each with its own reference."""
    return path, {"items": [{"reference": str(i), **item} for i in range(n)]}
aes64 = {"keyName": "bench-aes", "algorithm": "AES/GCM/NoPadding", "input": b64(os.urandom(64))}
reqs["aes64"] = ("symmetric/encrypt", aes64)
reqs["aes64x100"] = batch("symmetric/encrypt", aes64)
reqs["ecdsax100"] = batch("asymmetric/sign", reqs["ecdsa"][1])
# AES-256-GCM decryption of 64 B: (key, version fields of the encryption,
# of the decryption). A versioned ciphertext names its version itself.
decs = {
    "dec-legacy": ("bench-rot-fresh", {}, {}),
    "dec-fresh": ("bench-rot-fresh", {"versioned": True}, {"versioned": True}),
    "dec-newest": ("bench-rotated", {"versioned": True}, {"versioned": True}),
    "dec-v1": ("bench-rotated", {"versioned": True, "keyVersion": 1}, {"versioned": True}),
    "dec-v1kv": ("bench-rotated", {"keyVersion": 1}, {"keyVersion": 1}),
}
if op in decs:
    key, enc, dec = decs[op]
    gcm = {"keyName": key, "algorithm": "AES/GCM/NoPadding"}
    ct = json.loads(post("symmetric/encrypt", {**gcm, **enc, "input": b64(os.urandom(64))}))["output"]
    reqs[op] = ("symmetric/decrypt", {**gcm, **dec, "input": ct})
path, body = reqs[op]
post(path, body)  # connection and handshake before counting
if n > 0:
    os.system("callgrind_control -z >/dev/null 2>&1")
    for _ in range(n):
        post(path, body)
    os.system("callgrind_control -d >/dev/null 2>&1")
