#!/usr/bin/env python3
"""etcd_import.py CSV HOST:PORT... — the price-paid import into etcd, as
repl_bench.sh's reference system (tests/bench/README.md, "Replication").

Every row of CSV becomes the key "/<column 1>" (quotes stripped, "/" made
"_", as statefsctl import --csv does) with the raw row as its value. One
long-lived client (http.client, keep-alive) sends them to the first
member through etcd's gRPC gateway, POST /v3/kv/txn, BATCH (128: etcd's
default --max-txn-ops) puts per transaction, one transaction at a time.
The request bodies (JSON, base64) are built before the clock starts, so
the figure is etcd's, not Python's. After the last transaction answers
with revision R, each member is asked, every 20 ms, a serializable
/v3/kv/range of the last key (answered from its own state, not through
the leader) until its header revision is >= R.

Waits up to 30 s for every member's /health first. Prints
`etcd_import S s` (until the last txn answered), `etcd_converged S s`
(until all members had R) and `etcd_import_rate ROWS/s` (rows over
etcd_converged), then checks that a member holds exactly as many keys as
rows (exit 1 if not).
"""
import base64
import http.client
import json
import sys
import time

BATCH = 128


def b64(b):
    return base64.b64encode(b).decode()


def post(conn, path, body):
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError("%s: HTTP %d %s" % (path, r.status, data[:200]))
    return json.loads(data)


def main():
    if len(sys.argv) < 3:
        print("usage: etcd_import.py CSV HOST:PORT...", file=sys.stderr)
        return 2
    members = [m.split(":") for m in sys.argv[2:]]
    conns = [http.client.HTTPConnection(h, int(p), timeout=60) for h, p in members]

    rows = []
    with open(sys.argv[1], "rb") as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            key = line.split(b",", 1)[0].strip(b'"').replace(b"/", b"_")
            rows.append((b"/" + key, line))
    bodies = []
    for i in range(0, len(rows), BATCH):
        ops = [{"requestPut": {"key": b64(k), "value": b64(v)}}
               for k, v in rows[i:i + BATCH]]
        bodies.append(json.dumps({"success": ops}))
    last_key = json.dumps({"key": b64(rows[-1][0]), "serializable": True})

    deadline = time.time() + 30
    for c in conns:
        while True:
            try:
                c.request("GET", "/health")
                r = c.getresponse()
                ok = r.status == 200 and b"true" in r.read()
            except (OSError, http.client.HTTPException):
                c.close()
                ok = False
            if ok:
                break
            if time.time() > deadline:
                print("etcd_import.py: cluster not healthy in 30 s", file=sys.stderr)
                return 1
            time.sleep(0.1)

    t0 = time.time()
    rev = 0
    for body in bodies:
        res = post(conns[0], "/v3/kv/txn", body)
        rev = int(res["header"]["revision"])
    t1 = time.time()
    for c in conns:
        while int(post(c, "/v3/kv/range", last_key)["header"]["revision"]) < rev:
            time.sleep(0.02)
    t2 = time.time()

    print("etcd_import %.6f s" % (t1 - t0))
    print("etcd_converged %.6f s" % (t2 - t0))
    print("etcd_import_rate %d rows/s" % (len(rows) / (t2 - t0)))
    res = post(conns[-1], "/v3/kv/range",
               json.dumps({"key": b64(b"/"), "range_end": b64(b"0"),
                           "count_only": True, "serializable": True}))
    n = int(res.get("count", 0))
    if n != len(rows):
        print("etcd_import.py: %d keys on the last member, %d rows" % (n, len(rows)),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
