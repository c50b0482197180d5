#!/usr/bin/env python3
"""Cluster test: two `fleetview serve` nodes on one PostgreSQL behind HAProxy, with real servers.

What it starts (core/cluster/services.py): a private PostgreSQL from Debian's packages (initdb in
a temporary directory, as an unprivileged user when run as root, on a free port), two nodes `a`
and `b` with `--db postgres://…`, HAProxy with core/cluster/haproxy.cfg (mode tcp, leastconn,
health checks) in front of them, and `fleetview simulate` sending through HAProxy with
`--acked-log`. Then:

1. every device logs in and sends; HAProxy spreads them over both nodes;
2. node a is killed with SIGKILL mid-stream: every device must end up on node b (HAProxy's
   connection counts, the `sessions` table, the simulator's connected count);
3. node a is started again; a command queued through node a's HTTP API for a device held by
   node b must be answered (the device's answer read back through node a);
4. PostgreSQL is stopped with `pg_ctl stop -m immediate` while the devices send, then started
   again: the devices must be acked again;
5. the simulator stops; every record it logged as acked must be in the database exactly once.

Run by `make test-cluster` (part of `make test`); a few minutes. Exit status 0 when every check
passed; the last line is "N passed, M failed".

    python3 core/tests/cluster/cluster_test.py [--devices 500] [--binary PATH] [--keep]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "core", "cluster"))

from services import HAProxy, Node, Postgres, ServiceError, Simulator, stop_all, wait_for  # noqa: E402

T0 = time.time()


def say(msg):
    print(f"[cluster {time.time() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


class Checks:
    """Named pass/fail results, printed together at the end."""

    def __init__(self):
        self.results = []

    def check(self, name, ok, detail):
        self.results.append((name, bool(ok), detail))
        say(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
        return ok

    def summary(self):
        passed = sum(1 for _, ok, _ in self.results if ok)
        failed = len(self.results) - passed
        return passed, failed


def build(profile_args):
    say("building fleetview (cargo build -p fleetview --all-features --bin fleetview)")
    subprocess.run(["cargo", "build", "-q", "-p", "fleetview", "--all-features", "--bin", "fleetview",
                    *profile_args], cwd=ROOT, check=True)
    out = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    target = os.environ.get("CARGO_TARGET_DIR") or json.loads(out)["target_directory"]
    return os.path.join(target, "release" if "--release" in profile_args else "debug", "fleetview")


def http(method, url, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def sessions(pg):
    """Devices per node in the `sessions` table, or None while the database is unreachable."""
    try:
        return {node: int(n) for node, n in pg.psql("SELECT node, count(*) FROM sessions GROUP BY node")}
    except ServiceError:
        return None


def acked_log_against_database(pg, path):
    """Compare the simulator's acked log with the records table, in the database itself."""
    script = f"""
CREATE TEMP TABLE acked (imei TEXT NOT NULL, ts BIGINT NOT NULL, raw TEXT NOT NULL);
\\copy acked FROM '{path}' WITH (FORMAT text, DELIMITER ' ')
CREATE TEMP TABLE matched AS
    SELECT a.imei, a.ts, count(r.id) AS n
    FROM acked a
    LEFT JOIN devices d ON d.imei = a.imei
    LEFT JOIN records r ON r.device_id = d.id AND r.timestamp_ms = a.ts AND r.raw = decode(a.raw, 'hex')
    GROUP BY a.imei, a.ts, a.raw;
SELECT
    (SELECT count(*) FROM acked),
    (SELECT count(*) FROM (SELECT DISTINCT imei, ts FROM acked) x),
    (SELECT count(*) FROM matched WHERE n = 0),
    (SELECT count(*) FROM matched WHERE n > 1),
    (SELECT count(*) FROM records),
    (SELECT count(*) FROM (SELECT device_id, timestamp_ms, raw FROM records
                           GROUP BY 1, 2, 3 HAVING count(*) > 1) x),
    (SELECT count(*) FROM devices);
SELECT a.imei, a.ts FROM matched a WHERE n = 0 ORDER BY a.ts LIMIT 5;
"""
    rows = pg.psql_script(script)
    lines, distinct, missing, duplicated, db_rows, db_dups, devices = (int(x) for x in rows[0])
    return {"lines": lines, "distinct": distinct, "missing": missing, "duplicated": duplicated,
            "db_rows": db_rows, "db_duplicates": db_dups, "devices": devices,
            "missing_examples": [" ".join(r) for r in rows[1:]]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--rate", type=float, default=2.0, help="records/s per device")
    ap.add_argument("--binary", help="fleetview binary (default: build it)")
    ap.add_argument("--release", action="store_true", help="build and use the release binary")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, acked log, database)")
    args = ap.parse_args()

    binary = args.binary or build(["--release"] if args.release else [])
    work = tempfile.mkdtemp(prefix="fleetview-cluster-")
    say(f"work directory {work}")
    checks = Checks()
    pg = lb = sim = None
    nodes = []
    acked_log = os.path.join(work, "acked.log")
    figures = {}
    try:
        pg = Postgres().start()
        say(f"PostgreSQL ({pg.bindir}) at {pg.url}, data in {pg.data}")
        a = Node(binary, "a", pg.url, work, ["--node-id", "a-1"])
        b = Node(binary, "b", pg.url, work, ["--node-id", "b-1"])
        nodes = [a, b]
        a.start()
        b.start()
        lb = HAProxy(work, a.tcp, b.tcp, maxconn=max(1000, 2 * args.devices)).start()
        say(f"node a: devices {a.tcp}, HTTP {a.http}; node b: devices {b.tcp}, HTTP {b.http}; HAProxy {lb.addr}")
        n = args.devices
        sim = Simulator([
            binary, "simulate", "--devices", str(n), "--server", lb.addr, "--rate", str(args.rate),
            "--batch", "5", "--ramp", "5", "--ack-timeout", "5", "--backoff", "0.5", "--backoff-max", "4",
            "--acked-log", acked_log, "--report-every", "1", "--json",
        ], echo=lambda line: say("simulate: " + line))

        # 1. Everyone in, spread over both nodes, records acked.
        wait_for(f"{n} devices connected", lambda: sim.value("connected") >= n, 60)
        acked_before = wait_for("records acked", lambda: sim.value("acked"), 30)
        spread = lb.stats()
        checks.check("devices spread over both nodes", spread["a"]["scur"] > 0 and spread["b"]["scur"] > 0,
                     f"HAProxy: node a {spread['a']['scur']}, node b {spread['b']['scur']} connections; "
                     f"{acked_before} records acked so far")
        time.sleep(3)

        # 2. Node a dies mid-stream.
        held = lb.stats()["a"]["scur"]
        acked_at_kill = sim.value("acked")
        t_kill = time.time()
        a.kill()
        say(f"node a killed (SIGKILL) holding {held} devices, {acked_at_kill} records acked so far")

        def all_on_b():
            st, ses = lb.stats(), sessions(pg)
            ok = (st["b"]["scur"] >= n and st["a"]["scur"] == 0 and sim.value("connected") >= n
                  and ses is not None and ses.get("b-1", 0) == n and ses.get("a-1", 0) == 0)
            return (st, ses) if ok else None
        try:
            st, ses = wait_for("every device on node b", all_on_b, 90)
            moved = time.time() - t_kill
            checks.check("every device on node b after node a was killed", True,
                         f"{moved:.1f} s after the kill: HAProxy node b {st['b']['scur']} connections "
                         f"(node a {st['a']['status']}), sessions {ses}, simulator connected "
                         f"{sim.value('connected')}")
            figures["failover_s"] = moved
        except ServiceError as e:
            st, ses = lb.stats(), sessions(pg)
            checks.check("every device on node b after node a was killed", False,
                         f"{e}: HAProxy {st}, sessions {ses}, simulator connected {sim.value('connected')}")
        acked_after_kill = sim.value("acked")
        wait_for("acks after the failover", lambda: sim.value("acked") > acked_after_kill, 30)

        # 3. Node a back (as a new node, as a restarted process would be by default); a command
        # queued through it for a device node b holds.
        a.extra_args = ["--node-id", "a-2"]
        a.start()
        wait_for("HAProxy seeing node a up", lambda: lb.stats()["a"]["status"] == "UP", 30)
        imei = pg.psql("SELECT imei FROM sessions WHERE node = 'b-1' ORDER BY imei LIMIT 1")[0][0]
        t_cmd = time.time()
        status, queued = http("POST", f"{a.http_url}/api/devices/{imei}/commands", {"text": "getinfo"})
        if status in (200, 201, 202) and isinstance(queued, dict):
            cid = queued["id"]

            def answered():
                s, c = http("GET", f"{a.http_url}/api/commands/{cid}")
                return c if s == 200 and isinstance(c, dict) and c.get("status") in ("answered", "failed",
                                                                                    "unanswered") else None
            try:
                c = wait_for(f"command {cid} answered", answered, 60)
                text = (c.get("response") or {}).get("text") or ""
                checks.check("command queued on node a answered by the device on node b",
                             c["status"] == "answered" and text.startswith("RTC:"),
                             f"IMEI {imei}, command {cid}: {c['status']} after {(time.time() - t_cmd) * 1000:.0f} ms, "
                             f"response {text[:60]!r}")
                figures["command_s"] = time.time() - t_cmd
            except ServiceError as e:
                checks.check("command queued on node a answered by the device on node b", False, str(e))
        else:
            checks.check("command queued on node a answered by the device on node b", False,
                         f"POST /api/devices/{imei}/commands on node a: {status} {queued}")

        # 4. PostgreSQL crashes (as far as it can tell) while the devices send, and comes back.
        time.sleep(2)
        acked_at_stop = sim.value("acked")
        t_stop = time.time()
        pg.stop("immediate")
        say(f"PostgreSQL stopped with -m immediate ({acked_at_stop} records acked so far)")
        time.sleep(5)
        acked_while_down = sim.value("acked")
        pg.start()
        t_up = time.time()
        figures["pg_down_s"] = t_up - t_stop
        say(f"PostgreSQL started again after {t_up - t_stop:.1f} s")
        try:
            wait_for("acks after PostgreSQL came back", lambda: sim.value("acked") > acked_while_down + n, 90)
            resumed = time.time() - t_up
            figures["pg_resume_s"] = resumed
            wait_for(f"{n} devices connected", lambda: sim.value("connected") >= n, 60)
            checks.check("devices acked again after PostgreSQL restarted", True,
                         f"acks resumed {resumed:.1f} s after the restart; {sim.value('connected')} connected")
        except ServiceError as e:
            checks.check("devices acked again after PostgreSQL restarted", False, str(e))
        time.sleep(5)

        # 5. Stop; every acked record stored once.
        sim.interrupt()
        summary = sim.wait(timeout=60) or {}
        c = summary.get("counters", {})
        lat = summary.get("ack_latency", {})
        say(f"simulator: {json.dumps(c)}")
        checks.check("no device rejected, simulator log complete",
                     c.get("rejected", 1) == 0 and summary.get("acked_log_lines") == c.get("acked"),
                     f"rejected {c.get('rejected')}, acked {c.get('acked')}, acked log lines "
                     f"{summary.get('acked_log_lines')}")
        r = acked_log_against_database(pg, acked_log)
        checks.check("every acked record in the database exactly once",
                     r["lines"] > 0 and r["missing"] == 0 and r["duplicated"] == 0 and r["db_duplicates"] == 0
                     and r["distinct"] == r["lines"],
                     f"{r['lines']} acked ({r['distinct']} distinct), missing {r['missing']} "
                     f"{r['missing_examples']}, stored twice {r['duplicated']}; {r['db_rows']} rows in the "
                     f"database ({r['db_rows'] - r['lines']} sent but not acked when the run stopped), "
                     f"duplicate rows {r['db_duplicates']}, {r['devices']} devices")
        figures.update(summary=summary, db=r, latency=lat)
    except (ServiceError, OSError, subprocess.CalledProcessError, KeyError) as e:
        checks.check("cluster run", False, f"{type(e).__name__}: {e}")
    finally:
        stop_all(sim, nodes, lb, pg, keep=args.keep)

    passed, failed = checks.summary()
    s = figures.get("summary", {})
    c = s.get("counters", {})
    lat = figures.get("latency", {})
    print()
    print(f"fleetview cluster test: {args.devices} devices through HAProxy (leastconn) to 2 nodes on PostgreSQL, "
          f"{time.time() - T0:.0f} s")
    if c:
        print(f"  simulator      {c.get('acked', 0):,} records acked, {c.get('resent', 0):,} resent, "
              f"{c.get('reconnects', 0):,} reconnects, {c.get('ack_timeouts', 0):,} ack timeouts, "
              f"{c.get('connect_errors', 0):,} connect errors; ack p50 {lat.get('p50_ms', 0):.1f} ms, "
              f"p99 {lat.get('p99_ms', 0):.1f} ms, max {lat.get('max_ms', 0):.0f} ms")
    if "failover_s" in figures:
        print(f"  node a killed  every device on node b {figures['failover_s']:.1f} s later")
    if "command_s" in figures:
        print(f"  command        queued on node a, answered by the device on node b in "
              f"{figures['command_s'] * 1000:.0f} ms")
    if "pg_resume_s" in figures:
        print(f"  PostgreSQL     stopped -m immediate, down {figures['pg_down_s']:.1f} s; acks resumed "
              f"{figures['pg_resume_s']:.1f} s after its restart")
    if "db" in figures:
        d = figures["db"]
        print(f"  database       {d['lines']:,} acked records: {d['missing']} missing, {d['duplicated']} stored twice; "
              f"{d['db_rows']:,} rows")
    for name, ok, detail in checks.results:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    if args.keep:
        print(f"  kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
