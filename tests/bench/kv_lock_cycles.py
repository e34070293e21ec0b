#!/usr/bin/env python3
"""kv_lock_cycles.py — lock/unlock cycles against etcd or redis, the
comparison points of tests/bench/lock_mesh_bench.sh.

  kv_lock_cycles.py etcd HOST:PORT THREADS SECONDS contended|own NAME
  kv_lock_cycles.py redis HOST:PORT THREADS SECONDS contended|own NAME

THREADS threads, each with its own keep-alive connection, loop
lock/unlock for SECONDS on one shared lock name (contended) or on a name
of their own (own). Prints `NAME_cycles N cycles/s`, `NAME_p50_ms`,
`NAME_p99_ms` (grant latency: from the first try to the grant).

etcd: the v3 lock API (the service etcdctl lock uses) through etcd's
gRPC gateway, JSON over one HTTP/1.1 keep-alive connection per thread:
one lease per thread (/v3/lease/grant, TTL 60 s), then per cycle
/v3/lock/lock {name, lease} and /v3/lock/unlock {key}. Not `etcdctl
lock NAME -- true`: every call of it starts a Go process, makes a lease
and a session (a few tens of ms), which would measure process start-up.

redis: SET NAME TOKEN NX PX 10000 until it answers OK (a refused SET is
tried again at once: the fastest a redis lock can go), then DEL NAME.
One connection per thread (RESP on a plain socket, no pipelining).
"""
import base64
import http.client
import json
import socket
import sys
import threading
import time


def b64(s):
    return base64.b64encode(s.encode()).decode()


class Etcd:
    def __init__(self, addr, name):
        host, port = addr.rsplit(":", 1)
        self.c = http.client.HTTPConnection(host, int(port), timeout=30)
        self.name = b64(name)
        self.lease = self.call("/v3/lease/grant", {"TTL": 60})["ID"]
        self.key = None

    def call(self, path, body):
        self.c.request("POST", path, json.dumps(body),
                       {"Content-Type": "application/json"})
        r = self.c.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError("%s: %d %s" % (path, r.status, data[:200]))
        return json.loads(data)

    def lock(self):
        self.key = self.call("/v3/lock/lock",
                             {"name": self.name, "lease": self.lease})["key"]

    def unlock(self):
        self.call("/v3/lock/unlock", {"key": self.key})


class Redis:
    """A minimal RESP client on one socket (no python3-redis needed: a
    pyenv python3 may not see Debian's module)."""

    def __init__(self, addr, name):
        host, port = addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")
        self.name = name.encode()
        self.token = ("%d.%d" % (time.time_ns(), threading.get_ident())).encode()

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        line = self.f.readline()
        if line[:1] == b"-":
            raise RuntimeError("redis: %r" % line)
        if line[:1] == b"$" and line[1:3] != b"-1":
            self.f.read(int(line[1:]) + 2)
        return line

    def lock(self):
        while self.cmd(b"SET", self.name, self.token, b"NX", b"PX", b"10000") != b"+OK\r\n":
            pass

    def unlock(self):
        self.cmd(b"DEL", self.name)


def main():
    kind, addr, nth, secs, mode, name = sys.argv[1:7]
    nth, secs = int(nth), float(secs)
    cls = Etcd if kind == "etcd" else Redis
    tag = "kvlc-%d" % time.time_ns()
    clients = [cls(addr, tag if mode == "contended" else "%s-%d" % (tag, i))
               for i in range(nth)]
    lats = [[] for _ in range(nth)]
    errors = []
    start = time.monotonic()
    until = start + secs

    def run(i):
        c, lat = clients[i], lats[i]
        try:
            while time.monotonic() < until:
                t0 = time.monotonic()
                c.lock()
                lat.append((time.monotonic() - t0) * 1000)
                c.unlock()
        except Exception as e:  # reported, and the run fails
            errors.append(repr(e))

    ts = [threading.Thread(target=run, args=(i,)) for i in range(nth)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    el = time.monotonic() - start
    if errors:
        print("kv_lock_cycles: %s" % errors[0], file=sys.stderr)
        sys.exit(1)
    a = sorted(x for l in lats for x in l)
    if not a:
        print("kv_lock_cycles: no cycle completed", file=sys.stderr)
        sys.exit(1)
    print("%s_cycles %.0f cycles/s" % (name, len(a) / el))
    print("%s_p50_ms %.3f ms" % (name, a[(len(a) - 1) // 2]))
    print("%s_p99_ms %.3f ms" % (name, a[int((len(a) - 1) * 0.99)]))


main()
