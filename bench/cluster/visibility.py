"""How long a key rotation or a state change takes to be visible on every
node of a cluster (issue 10, item 9: within 2 s on a 5-process cluster).

Starts N `vssm serve` processes as a static cluster on loopback with the
test harness (tests/vssmtest: its PKI, config and bootstrap by hand, as
`static_cluster` does), makes a key on node 1 and waits until every node
has it, then repeats K times: rotate the key on node 1 (admin/rotatekey),
disable it, enable it. Each change is timed from just before its request
is sent to node 1 until every node's keys/describe shows it (the new
newestVersion, or state DISABLED / ENABLED); one thread per other node
polls it over a keep-alive mTLS connection every POLL (5 ms). Between two
changes it waits a random part of the sync interval, so the changes fall
at every phase of the anti-entropy rounds.

Prints per kind of change the median, p95, max and min of the time until
all nodes see it, the median time node 1 took to answer the change (the
harness's password hash is cheap, so that is the change itself), and the
number of changes over the target. Exit status 1 if any change missed the target or never
arrived (after TIMEOUT s).

usage: python3 bench/cluster/visibility.py [--nodes 5] [--repeat 20]
           [--sync-interval 1] [--base-ip 200] [--target 2] [--json]
           [--bin PATH]
--bin (default $VSSM_BIN, else target/release/vssm) is the server binary.
Uses 127.0.0.BASE .. BASE+N-1, ports 8080-8083.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from vssmtest.cluster import ClusterNode, wait_until  # noqa: E402
from vssmtest.pki import Pki  # noqa: E402
from vssmtest.util import REPO  # noqa: E402

KEY = "bench-visibility"
POLL = 0.005  # seconds between two polls of one node
TIMEOUT = 30.0  # a change not seen by then counts as lost


def start_cluster(root: Path, ips: list[str], sync_interval: float) -> list[ClusterNode]:
    """`vssmtest.cluster.static_cluster` with a chosen sync interval."""
    pki = Pki(root / "pki")
    cluster = {"discovery": "static", "peers": list(ips), "attestation": "none",
               "syncIntervalSeconds": sync_interval}
    nodes = [ClusterNode(pki, ip, root / f"node-{ip}", cluster=cluster) for ip in ips]
    try:
        for n in nodes:
            n.start(wait=True)
            assert n.bootstrap().status == 200, n.log()[-2000:]
        for n in nodes:
            n.wait_ready(30)
    except BaseException:
        for n in nodes:
            n.stop()
        raise
    return nodes


def describe(client) -> dict | None:
    r = client.post("/REST/v1/keys/describe", {"keyType": "SYMMETRIC", "keyName": KEY})
    return r.json if r.status == 200 else None


class Watcher(threading.Thread):
    """Polls one node's keys/describe until `shows(answer)`; `seen` is the
    monotonic time of the first answer that showed the change."""

    def __init__(self, node: ClusterNode, shows, start: threading.Event):
        super().__init__(daemon=True)
        self.client = node.client(timeout=10)
        self.shows, self.start_event = shows, start
        self.seen: float | None = None
        self.error: str | None = None

    def run(self):
        self.start_event.wait()
        deadline = time.monotonic() + TIMEOUT
        try:
            while time.monotonic() < deadline:
                answer = describe(self.client)
                if answer is not None and self.shows(answer):
                    self.seen = time.monotonic()
                    return
                time.sleep(POLL)
        except Exception as e:  # noqa: BLE001 - reported as a lost change
            self.error = repr(e)


def timed_change(nodes: list[ClusterNode], admin, op: str, shows) -> dict:
    """Makes change `op` on node 1 and times its arrival on every node.
    The watchers connect first, so no handshake is in the measurement."""
    go = threading.Event()
    watchers = [Watcher(n, shows, go) for n in nodes[1:]]
    for w in watchers:
        describe(w.client)  # connect and handshake now
        w.start()
    t0 = time.monotonic()
    go.set()
    answer = admin.admin_ok(op, keyType="SYMMETRIC", keyName=KEY)
    acked = time.monotonic()
    for w in watchers:
        w.join(TIMEOUT + 5)
        w.client.close()
    lost = [n.ip for n, w in zip(nodes[1:], watchers) if w.seen is None]
    per_node = [acked - t0] + [(w.seen - t0) if w.seen is not None else None for w in watchers]
    return {"answer": answer, "per_node_s": per_node, "lost": lost,
            "errors": [w.error for w in watchers if w.error],
            "all_s": None if lost else max(per_node), "ack_s": acked - t0}


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile."""
    s = sorted(values)
    return s[min(len(s), max(1, math.ceil(q * len(s)))) - 1]


def summary(samples: list[dict], target: float) -> dict:
    alls = [s["all_s"] for s in samples if s["all_s"] is not None]
    acks = [s["ack_s"] for s in samples]
    out = {"changes": len(samples), "lost": sum(1 for s in samples if s["lost"]),
           "over_target": sum(1 for s in samples if s["all_s"] is None or s["all_s"] > target)}
    if alls:
        out.update(median_ms=1000 * statistics.median(alls), p95_ms=1000 * quantile(alls, 0.95),
                   max_ms=1000 * max(alls), min_ms=1000 * min(alls),
                   ack_median_ms=1000 * statistics.median(acks))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--repeat", type=int, default=20, help="changes of each kind")
    p.add_argument("--sync-interval", type=float, default=1.0,
                   help="cluster.syncIntervalSeconds (the harness uses 1; the default of a real node is 10)")
    p.add_argument("--base-ip", type=int, default=200, help="first node is 127.0.0.BASE")
    p.add_argument("--target", type=float, default=2.0, help="seconds (issue 10: 2)")
    p.add_argument("--json", action="store_true", help="one JSON document with every sample")
    p.add_argument("--bin", type=Path, default=Path(os.environ.get("VSSM_BIN") or REPO / "target/release/vssm"),
                   help="the vssm binary (default $VSSM_BIN, else the release build)")
    args = p.parse_args()
    ClusterNode.binary = args.bin.resolve()

    ips = [f"127.0.0.{args.base_ip + i}" for i in range(args.nodes)]
    with tempfile.TemporaryDirectory(prefix="vssm-visibility.") as tmp:
        print(f"starting {args.nodes} nodes on {ips[0]}..{ips[-1]}, syncIntervalSeconds "
              f"{args.sync_interval}", file=sys.stderr)
        nodes = start_cluster(Path(tmp), ips, args.sync_interval)
        try:
            admin = nodes[0].client(timeout=30)
            assert admin.generate(KEY, "SYMMETRIC", 32).status == 200
            observers = [n.client(timeout=10) for n in nodes]
            wait_until(lambda: all(describe(c) for c in observers), 30, desc="the key on every node")
            kinds = {"rotate": [], "disable": [], "enable": []}
            version = 1
            for i in range(args.repeat):
                for op in kinds:
                    time.sleep(random.uniform(0, args.sync_interval))
                    if op == "rotate":
                        want = version + 1
                        shows = lambda a, want=want: a.get("newestVersion", 0) >= want  # noqa: E731
                        op_name = "rotatekey"
                    else:
                        state = "DISABLED" if op == "disable" else "ENABLED"
                        shows = lambda a, state=state: a.get("state") == state  # noqa: E731
                        op_name = f"{op}key"
                    sample = timed_change(nodes, admin, op_name, shows)
                    if op == "rotate":
                        version = sample["answer"]["keyVersion"]
                        assert version == want, sample
                    kinds[op].append(sample)
                    shown = "lost on " + ",".join(sample["lost"]) if sample["lost"] else \
                        f"{1000 * sample['all_s']:.0f} ms"
                    print(f"{i + 1:>3}/{args.repeat} {op:<8} all {args.nodes} nodes: {shown}", file=sys.stderr)
        finally:
            problems = [p for n in nodes for p in n.survival_problems()]
            for n in nodes:
                n.stop()
    for p in problems:
        print(p, file=sys.stderr)

    results = {k: summary(v, args.target) for k, v in kinds.items()}
    if args.json:
        print(json.dumps({"nodes": args.nodes, "repeat": args.repeat, "sync_interval_s": args.sync_interval,
                          "target_s": args.target, "poll_s": POLL, "summary": results,
                          "samples": kinds}, indent=2))
    else:
        print(f"VSSM change visibility: {args.nodes} processes (static cluster on loopback), "
              f"syncIntervalSeconds {args.sync_interval:g}, {args.repeat} changes of each kind made on node 1; "
              f"time from sending the change until every node's keys/describe shows it "
              f"(polled every {POLL * 1000:.0f} ms)")
        print(f"{'change':<10} {'median ms':>10} {'p95 ms':>8} {'max ms':>8} {'min ms':>8} "
              f"{'node 1 ack ms':>14} {'over ' + format(args.target, 'g') + ' s':>9}")
        for kind, r in results.items():
            if "median_ms" not in r:
                print(f"{kind:<10} all lost")
                continue
            print(f"{kind:<10} {r['median_ms']:>10.1f} {r['p95_ms']:>8.1f} {r['max_ms']:>8.1f} "
                  f"{r['min_ms']:>8.1f} {r['ack_median_ms']:>14.1f} {r['over_target']:>9}")
    failed = problems or any(r["over_target"] for r in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
