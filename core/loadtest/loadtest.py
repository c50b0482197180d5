#!/usr/bin/env python3
"""Load test: `fleetview simulate` against `fleetview serve` on 127.0.0.1.

Builds the release binary, starts the server on free ports with a fresh database, ramps the
simulator to N concurrent TCP devices, holds them idle (server memory per idle connection), then
lets every device send records and measures, each second: connections held, records committed
(rows in the SQLite database), ack latency, server RSS and CPU. Ends with a table against the
goals of the load test:

    10,000 connections held, >= 100,000 records/s committed with ack-after-commit,
    p99 ack latency <= 100 ms, <= 8 KiB of server memory per idle connection.

Run on demand, not in CI (it needs a minute or two and both cores):

    make loadtest                              # from the repository root
    python3 core/loadtest/loadtest.py --devices 10000 --rate 10.5 --batch 10
    python3 core/loadtest/loadtest.py --rate 1                 # latency at 10,000 records/s
    python3 core/loadtest/loadtest.py --devices 500 --data 10      # quick look
    python3 core/loadtest/loadtest.py --perf                       # + a CPU profile of the server

On PostgreSQL (goals: >= 50,000 records/s committed with ack-after-commit, p99 ack <= 200 ms),
with a private server started for the run (core/cluster/services.py) or an existing one, on one
node or on two nodes behind HAProxy (core/cluster/haproxy.cfg, leastconn):

    python3 core/loadtest/loadtest.py --postgres                   # one node
    python3 core/loadtest/loadtest.py --postgres --nodes 2         # HAProxy + two nodes
    python3 core/loadtest/loadtest.py --db postgres://USER@HOST:PORT/DB --nodes 2

Under attack (`--attack idle,partial`, see attack.py): ATTACKERS hostile sockets from 100
loopback addresses hold connections open (idle, partial frames of the largest size, logins one
byte a second, garbage; each reopened when the server closes it), then DEVICES real devices
log in and send records. Prints the devices' connections held, their p99 ack latency and the
server's RSS, against the goals: all 1,000 devices connected, p99 <= 100 ms, RSS <= 1 GiB
under a flood of 10,000 connections:

    python3 core/loadtest/loadtest.py --attack idle,partial           # 10,000 attackers, 1,000 devices
    python3 core/loadtest/loadtest.py --attack slow,garbage --attackers 2000

With forwarding (`--forward`): the server also forwards every record from its outbox to a
local batched webhook receiver (this script, on 127.0.0.1), and the load test prints, each
second and at the end, the records the receiver got per second and the outbox lag
(`GET /api/forwarders`: entries not delivered yet and the age of the oldest), then waits for the
forwarder to catch up once the devices stop (goal: keeps up with 100,000 records/s):

    python3 core/loadtest/loadtest.py --forward

Figures are measured, never assumed: records/s comes from the database, latency from the
simulator's per-frame timing (send to ack), memory from /proc/PID/status of the server.
"""

import argparse
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "core", "cluster"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from services import HAProxy, Node, Postgres, ServiceError, Simulator, stop_all  # noqa: E402
from attack import KINDS, Attack  # noqa: E402

GOALS = {
    "connections": 10_000,
    "records_per_s": 100_000,
    "p99_ms": 100.0,
    "idle_bytes_per_conn": 8 * 1024,
}
# On PostgreSQL (one node or several): the commit is a network round trip to another process.
GOALS_POSTGRES = dict(GOALS, records_per_s=50_000, p99_ms=200.0)


def log(msg):
    print(f"[loadtest] {msg}", file=sys.stderr, flush=True)


def target_dir():
    if os.environ.get("CARGO_TARGET_DIR"):
        return os.environ["CARGO_TARGET_DIR"]
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)["target_directory"]


def build():
    log("building the release binary (cargo build --release --features server)")
    subprocess.run(
        ["cargo", "build", "--release", "-p", "fleetview", "--features", "server", "--bin", "fleetview"],
        cwd=ROOT, check=True,
    )
    return os.path.join(target_dir(), "release", "fleetview")


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(need, soft)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        sys.exit(f"[loadtest] open files limit is {soft}, {need} needed: raise the hard limit (ulimit -Hn)")
    return soft


def proc_status(pid, field):
    """A kB field of /proc/PID/status (VmRSS, VmHWM) in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid):
    """User + system CPU time of a process and its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_times(pid):
    """Per thread name: (seconds on a CPU, seconds runnable but waiting for one), summed over the
    threads of that name (/proc/PID/task/*/schedstat). The wait shows CPU starvation: a thread
    that waits long for a CPU delays acks however little work it has."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                run_ns, wait_ns = (int(x) for x in f.read().split()[:2])
        except (OSError, ValueError):
            continue
        run, wait = out.get(name, (0.0, 0.0))
        out[name] = (run + run_ns / 1e9, wait + wait_ns / 1e9)
    return out


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def established(port):
    """Server-side established TCP connections on `port`.

    `ss` (netlink) gives a consistent count; /proc/net/tcp is the fallback, but it is read in
    chunks while 10,000 sockets change, which can count some twice."""
    try:
        out = subprocess.run(
            ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
            capture_output=True, text=True, timeout=10,
        )
        if out.returncode == 0:
            return sum(1 for l in out.stdout.splitlines() if l.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    n = 0
    hexport = f":{port:04X}"
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split(None, 4)
                    if parts[1].endswith(hexport) and parts[3] == "01":
                        n += 1
        except OSError:
            pass
    return n


class Disk:
    """Write throughput and busy time of the block device holding a path (/proc/diskstats)."""

    def __init__(self, path):
        st = os.stat(path)
        self.dev = (os.major(st.st_dev), os.minor(st.st_dev))
        self.name = None
        self.last = self._read()

    def _read(self):
        try:
            with open("/proc/diskstats") as f:
                for line in f:
                    p = line.split()
                    major, minor = int(p[0]), int(p[1])
                    # The partition's stats, or the whole disk's when the fs sits on the disk.
                    if (major, minor) == self.dev:
                        self.name = p[2]
                        # sectors written (field 10), ms doing I/O (field 13), fsyncs not listed.
                        return (time.time(), int(p[9]) * 512, int(p[12]))
        except (OSError, IndexError, ValueError):
            pass
        return None

    def sample(self):
        """(MB/s written, % of time busy) since the last call; None for tmpfs and the like."""
        now = self._read()
        last, self.last = self.last, now
        if not now or not last:
            return None
        dt = max(now[0] - last[0], 1e-3)
        return ((now[1] - last[1]) / dt / 1e6, (now[2] - last[2]) / dt / 10)


class Db:
    """Counts committed records: the largest row id (O(log n), unlike count(*)).

    Row ids only grow and resends add no rows, so it is the number of records stored."""

    def __init__(self, path):
        self.path = path
        self.conn = None

    def rows(self):
        try:
            if self.conn is None:
                self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
            row = self.conn.execute("SELECT max(rowid) FROM records").fetchone()
            return row[0] or 0
        except sqlite3.Error:
            self.conn = None
            return None


def start_simulator(binary, args, server, devices, rate, batch):
    """`fleetview simulate` through the load test's phases (ramp, hold, data), reporting every
    second; its lines are logged as the load test's."""
    total = args.ramp + args.hold + args.data
    cmd = [
        binary, "simulate", "--devices", str(devices), "--server", server,
        "--rate", str(rate), "--batch", str(batch), "--codec", args.codec,
        "--ramp", str(args.ramp), "--hold", str(args.hold), "--duration", str(total),
        "--report-every", "1", "--threads", str(args.threads), "--ack-timeout", "30", "--json",
    ]
    log("simulate: " + " ".join(cmd[1:]))
    return Simulator(cmd, echo=lambda line: log("simulate: " + line))


def stop_server(server):
    """SIGTERM (the server finishes the frames it is storing and closes the database), then
    SIGKILL if it has not exited within 30 s."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024
    return str(n)


def fmt_opt(v):
    return "-" if v is None else f"{v:.0f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=10_000)
    # 10.5 records/s x 10,000 devices offers 5% more than the goal: a server that keeps up
    # shows a committed rate above 100,000/s rather than one equal to the offer, +- sampling.
    ap.add_argument("--rate", type=float, default=10.5, help="records/s per device in the data phase")
    ap.add_argument("--batch", type=int, default=10, help="records per frame")
    ap.add_argument("--codec", default="8E")
    ap.add_argument("--ramp", type=float, default=20.0, help="seconds to open all connections")
    ap.add_argument("--hold", type=float, default=10.0, help="seconds idle after the ramp")
    ap.add_argument("--data", type=float, default=30.0, help="seconds of data")
    ap.add_argument("--sync", default="full", choices=["full", "normal"], help="server commit durability")
    ap.add_argument("--threads", type=int, default=1, help="simulator runtime threads")
    ap.add_argument("--perf", action="store_true", help="profile the server with perf during the data phase")
    ap.add_argument("--db-dir", help="directory of the database (default: a temporary directory; "
                    "/dev/shm takes the disk out of the measurement)")
    ap.add_argument("--binary", help="use this fleetview binary instead of building one")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (database, logs)")
    ap.add_argument("--server-arg", action="append", default=[], help="extra argument for fleetview serve")
    ap.add_argument("--postgres", action="store_true",
                    help="store in a private PostgreSQL started for the run (core/cluster/services.py)")
    ap.add_argument("--db", metavar="postgres://USER@HOST:PORT/DB", help="store in this PostgreSQL database")
    ap.add_argument("--nodes", type=int, default=1, choices=[1, 2],
                    help="2: two nodes behind HAProxy (core/cluster/haproxy.cfg); needs --postgres or --db")
    ap.add_argument("--attack", help="comma-separated attacks run during the test: " + ", ".join(KINDS))
    ap.add_argument("--attackers", type=int, default=10_000, help="hostile sockets (with --attack)")
    ap.add_argument("--attack-pause", type=float, default=1.0, help="seconds before a closed hostile socket reopens")
    ap.add_argument("--forward", action="store_true",
                    help="forward every record to a local batched webhook receiver; print its rate and the outbox lag")
    ap.add_argument("--server-nofile", type=int, help="start the server with this open-files soft limit (e.g. 1024, "
                    "the usual default of a login shell or a systemd service); default: the load test's own")
    args = ap.parse_args()
    if args.attack:
        kinds = [k.strip() for k in args.attack.split(",") if k.strip()]
        bad = [k for k in kinds if k not in KINDS]
        if bad or not kinds:
            sys.exit(f"[loadtest] --attack {args.attack}: expected some of {', '.join(KINDS)}")
        return run_attack(args, kinds)
    if args.postgres or args.db or args.nodes > 1:
        return run_postgres(args)

    nofile = raise_nofile(args.devices + 1024)
    binary = args.binary or build()
    work = tempfile.mkdtemp(prefix="fleetview-load-")
    db_dir = tempfile.mkdtemp(prefix="fleetview-load-db-", dir=args.db_dir) if args.db_dir else work
    db_path = os.path.join(db_dir, "load.db")
    ready = os.path.join(work, "ready.json")
    server_log = open(os.path.join(work, "serve.log"), "w")
    log(f"open files limit {nofile}; work dir {work}")

    receiver = Receiver() if args.forward else None
    serve_cmd = [
        binary, "serve", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--http", "127.0.0.1:0",
        "--db", db_path, "--ready-file", ready, "--sync", args.sync,
        "--max-connections", str(args.devices + 1000), "--idle-timeout", "3600",
    ] + (["--forward", receiver.url] if receiver else []) + args.server_arg
    env = dict(os.environ, FLEETVIEW_LOG=os.environ.get("FLEETVIEW_LOG", "warn"))
    server = subprocess.Popen(serve_cmd, stdout=subprocess.DEVNULL, stderr=server_log, env=env)
    sim = None
    perf = None
    try:
        deadline = time.time() + 30
        while not os.path.exists(ready) or os.path.getsize(ready) == 0:
            if server.poll() is not None or time.time() > deadline:
                sys.exit(f"[loadtest] the server did not start; see {server_log.name}")
            time.sleep(0.05)
        time.sleep(0.1)
        addrs = json.load(open(ready))
        tcp = addrs["tcp"]
        http = addrs["http"]
        port = int(tcp.rsplit(":", 1)[1])
        time.sleep(1.0)
        base_rss = proc_status(server.pid, "VmRSS")
        log(f"server pid {server.pid} on {tcp}, RSS at rest {fmt_bytes(base_rss)}")

        t0 = time.time()
        sim = start_simulator(binary, args, tcp, args.devices, args.rate, args.batch)
        db = Db(db_path)
        disk = Disk(db_dir)

        samples = []
        idle = None
        perf_started = False
        last = (time.time(), db.rows() or 0, cpu_seconds(server.pid), cpu_seconds(sim.proc.pid))
        last_fwd = 0
        fwd_head = f" {'fwd/s':>8} {'pending':>8} {'lag s':>6}" if receiver else ""
        print(f"{'t':>5} {'phase':<7} {'conns':>6} {'rows':>10} {'rows/s':>8} {'p50ms':>7} {'p99ms':>7} "
              f"{'maxms':>7} {'RSS':>10} {'srv%':>5} {'sim%':>5} {'diskMB/s':>8} {'busy%':>5}{fwd_head}", flush=True)
        while sim.proc.poll() is None:
            time.sleep(1.0)
            now = time.time()
            t = now - t0
            try:
                rss = proc_status(server.pid, "VmRSS")
                srv_cpu = cpu_seconds(server.pid)
                sim_cpu = cpu_seconds(sim.proc.pid)
            except OSError:
                break
            rows = db.rows()
            rows = last[1] if rows is None else rows
            conns = established(port)
            io = disk.sample()
            dt = now - last[0]
            s = sim.latest
            phase = "ramp" if t < args.ramp else ("idle" if t < args.ramp + args.hold else "data")
            sample = {
                "threads": thread_times(server.pid),
                "srv_cpu_s": srv_cpu, "load1": os.getloadavg()[0],
                "t": t, "phase": phase, "conns": conns, "rows": rows, "rows_per_s": (rows - last[1]) / dt,
                "p50": float(s.get("p50_ms", 0)), "p99": float(s.get("p99_ms", 0)),
                "max": float(s.get("max_ms", 0)), "rss": rss,
                "srv_cpu": (srv_cpu - last[2]) / dt * 100, "sim_cpu": (sim_cpu - last[3]) / dt * 100,
                "sim_connected": int(s.get("connected", 0)),
                "disk_mb_s": io[0] if io else None, "disk_busy": io[1] if io else None,
            }
            fwd_cols = ""
            if receiver:
                got = receiver.records()
                pending, lag = forwarder_state(http)
                sample.update(fwd_per_s=(got - last_fwd) / dt, pending=pending, lag=lag)
                last_fwd = got
                fwd_cols = f" {sample['fwd_per_s']:>8.0f} {fmt_opt(pending):>8} {'-' if lag is None else f'{lag:.1f}':>6}"
            samples.append(sample)
            last = (now, rows, srv_cpu, sim_cpu)
            print(f"{t:5.0f} {phase:<7} {conns:>6} {rows:>10} {sample['rows_per_s']:>8.0f} {sample['p50']:>7.2f} "
                  f"{sample['p99']:>7.2f} {sample['max']:>7.1f} {fmt_bytes(rss):>10} {sample['srv_cpu']:>5.0f} "
                  f"{sample['sim_cpu']:>5.0f} {fmt_opt(sample['disk_mb_s']):>8} {fmt_opt(sample['disk_busy']):>5}"
                  f"{fwd_cols}", flush=True)
            # The idle measurement: the last full second before data starts.
            if phase == "idle" and t >= args.ramp + args.hold - 2.0:
                idle = {"conns": conns, "rss": rss, "fds": open_fds(server.pid)}
            if args.perf and phase == "data" and not perf_started and t > args.ramp + args.hold + 3:
                perf_started = True
                perf_data = os.path.join(work, "perf.data")
                perf = subprocess.Popen(
                    ["perf", "record", "-e", "cpu-clock", "-F", "499", "-g", "-p", str(server.pid),
                     "-o", perf_data, "--", "sleep", str(min(10.0, args.data / 2))],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
        summary = sim.wait()
        db_rows = db.rows()
        peak_rss = proc_status(server.pid, "VmHWM")
        caught_up = None
        if receiver:
            # The devices have stopped: how long until the forwarder has delivered everything.
            stopped = time.time()
            while time.time() - stopped < 120:
                pending, lag = forwarder_state(http)
                if pending == 0:
                    caught_up = time.time() - stopped
                    break
                time.sleep(0.2)
            # Frames still queued when the simulator stopped were committed since.
            db_rows = db.rows() or db_rows
    finally:
        if sim and sim.proc.poll() is None:
            sim.proc.kill()
        if perf:
            perf.wait()
        stop_server(server)
        server_log.close()
        if receiver:
            receiver.close()
        if db_dir != work and not args.keep:
            shutil.rmtree(db_dir, ignore_errors=True)

    report(args, samples, idle, base_rss, peak_rss, summary, db_rows)
    if receiver:
        report_forwarding(samples, receiver, db_rows, caught_up)
    if args.perf and perf:
        profile(os.path.join(work, "perf.data"))
    if args.keep:
        log(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


class Receiver:
    """A webhook receiver for `--forward`: answers every POST 200 once its body is read, and
    counts the records in it (each forwarded record is an object with `"type":"record"`; JSON
    escapes quotes in strings, so the marker cannot occur inside a value)."""

    def __init__(self):
        counts = self.counts = {"records": 0, "posts": 0, "bytes": 0}
        lock = self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                n = body.count(b'"type":"record"')
                with lock:
                    counts["records"] += n
                    counts["posts"] += 1
                    counts["bytes"] += len(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def records(self):
        with self.lock:
            return self.counts["records"]

    def close(self):
        self.server.shutdown()


def forwarder_state(http):
    """The forwarder's (pending entries, lag seconds) from `GET /api/forwarders`."""
    try:
        with urllib.request.urlopen(f"http://{http}/api/forwarders", timeout=5) as r:
            f = json.load(r)[0]
        return f["pending"], f["lag_seconds"]
    except (OSError, ValueError, IndexError, KeyError):
        return None, None


def report_forwarding(samples, receiver, total_rows, caught_up):
    data = [s for s in samples if s["phase"] == "data"]
    steady = data[3:-1] if len(data) > 5 else data
    rate = sum(s["fwd_per_s"] for s in steady) / len(steady) if steady else 0.0
    best = max((s["fwd_per_s"] for s in steady), default=0.0)
    lags = [s["lag"] for s in steady if s["lag"] is not None]
    pend = [s["pending"] for s in steady if s["pending"] is not None]
    c = receiver.counts
    print(f"  forwarding            {rate:,.0f} records/s steady (best second {best:,.0f}/s) to a local webhook, "
          f"{c['posts']:,} POSTs of {c['records'] / max(c['posts'], 1):,.0f} records on average")
    if lags:
        print(f"  outbox lag            {sum(lags) / len(lags):.2f} s on average, max {max(lags):.2f} s; "
              f"pending entries max {max(pend):,} (steady data phase)")
    if caught_up is not None:
        print(f"  delivered             {c['records']:,} records for {total_rows:,} rows stored; "
              f"caught up {caught_up:.1f} s after the devices stopped")
    else:
        print(f"  delivered             {c['records']:,} records for {total_rows:,} rows stored; "
              f"NOT caught up within 120 s after the devices stopped")


def report(args, samples, idle, base_rss, peak_rss, summary, db_rows, goals=GOALS, storage=None):
    data = [s for s in samples if s["phase"] == "data"]
    # Steady state: skip the first 3 s of data (every device starts its first batch) and the last.
    steady = data[3:-1] if len(data) > 5 else data
    held = max((s["conns"] for s in samples), default=0)
    rate = sum(s["rows_per_s"] for s in steady) / len(steady) if steady else 0.0
    best = max((s["rows_per_s"] for s in steady), default=0.0)
    srv_cpu = sum(s["srv_cpu"] for s in steady) / len(steady) if steady else 0.0
    sim_cpu = sum(s["sim_cpu"] for s in steady) / len(steady) if steady else 0.0
    # CPU time per committed record does not depend on how much CPU other processes took, so
    # it projects what the server would do with the machine to itself.
    cpu_per_record = None
    if len(steady) >= 2 and steady[-1]["rows"] > steady[0]["rows"]:
        cpu_per_record = (steady[-1]["srv_cpu_s"] - steady[0]["srv_cpu_s"]) / (steady[-1]["rows"] - steady[0]["rows"])
    load1 = sum(s["load1"] for s in steady) / len(steady) if steady else os.getloadavg()[0]
    disk = [s for s in steady if s["disk_mb_s"] is not None]
    disk_mb = sum(s["disk_mb_s"] for s in disk) / len(disk) if disk else None
    disk_busy = sum(s["disk_busy"] for s in disk) / len(disk) if disk else None
    lat = (summary or {}).get("ack_latency", {})
    counters = (summary or {}).get("counters", {})
    per_idle = (idle["rss"] - base_rss) / idle["conns"] if idle and idle["conns"] else float("nan")
    offered = args.devices * args.rate

    print()
    print(f"fleetview load test: {args.devices} TCP devices, {args.rate} records/s each in frames of "
          f"{args.batch} (offered {offered:,.0f} records/s), Codec {args.codec}, {storage or f'--sync {args.sync}'}")
    print(f"  connections held      {held:,} (simulator peak {counters.get('peak_connected', 0):,}, "
          f"reconnects {counters.get('reconnects', 0)}, connect errors {counters.get('connect_errors', 0)})")
    print(f"  records committed     {rate:,.0f}/s steady (best second {best:,.0f}/s); {db_rows:,} rows in the "
          f"database, {counters.get('acked', 0):,} acked, {counters.get('resent', 0)} resent, "
          f"{counters.get('dropped', 0)} dropped")
    print(f"  ack latency           p50 {lat.get('p50_ms', 0):.2f} ms, p99 {lat.get('p99_ms', 0):.2f} ms, "
          f"p99.9 {lat.get('p999_ms', 0):.2f} ms, max {lat.get('max_ms', 0):.2f} ms "
          f"({lat.get('count', 0):,} acks, whole run)")
    if idle:
        print(f"  server memory         {fmt_bytes(base_rss)} at rest, {fmt_bytes(idle['rss'])} with "
              f"{idle['conns']:,} idle connections, peak {fmt_bytes(peak_rss)} under load")
        print(f"  per idle connection   {per_idle:,.0f} bytes")
    others = "".join(f", {name} {sum(s['cpu'][name] for s in steady) / len(steady):.0f}%"
                     for name in (steady[0].get("cpu", {}) if steady else {}))
    print(f"  CPU (2 cores = 200%)  server {srv_cpu:.0f}%{others}, simulator {sim_cpu:.0f}% (steady data phase); "
          f"load average {load1:.1f} on {os.cpu_count()} CPUs")
    if cpu_per_record:
        print(f"  server CPU per record {cpu_per_record * 1e6:.1f} us: at most {1 / cpu_per_record:,.0f} records/s "
              f"per core, {os.cpu_count() / cpu_per_record:,.0f}/s with every core to itself")
    if cpu_per_record and steady[0].get("cpu_s"):
        # Every process of the deployment, per committed record: what the machine would do with
        # all its cores to them (the other processes on a shared machine do not count).
        n = steady[-1]["rows"] - steady[0]["rows"]
        per = {"server": cpu_per_record}
        per.update({k: (steady[-1]["cpu_s"][k] - steady[0]["cpu_s"][k]) / n for k in steady[0]["cpu_s"]})
        total = sum(per.values())
        print("  CPU per record, all   " + ", ".join(f"{k} {v * 1e6:.1f} us" for k, v in per.items())
              + f": {total * 1e6:.1f} us, at most {os.cpu_count() / total:,.0f} records/s with every core to them")
    if len(steady) >= 2:
        dt = steady[-1]["t"] - steady[0]["t"]
        a, b = steady[0]["threads"], steady[-1]["threads"]
        parts = []
        for name in sorted(b, key=lambda n: -(b[n][0] - a.get(n, (0, 0))[0])):
            run = b[name][0] - a.get(name, (0, 0))[0]
            wait = b[name][1] - a.get(name, (0, 0))[1]
            if run / dt >= 0.005:
                parts.append(f"{name} {run / dt * 100:.0f}% (+{wait / dt * 100:.0f}% waiting for a CPU)")
        print("  server threads        " + ", ".join(parts))
    if disk_mb is not None:
        print(f"  database disk         {disk_mb:.1f} MB/s written, busy {disk_busy:.0f}% of the time (steady data phase)")
    print()
    checks = [
        ("connections held", held >= goals["connections"], f"{held:,} / {goals['connections']:,}"),
        ("records/s committed", rate >= goals["records_per_s"], f"{rate:,.0f} / {goals['records_per_s']:,}"),
        ("p99 ack latency", 0 < lat.get("p99_ms", 1e9) <= goals["p99_ms"],
         f"{lat.get('p99_ms', 0):.1f} ms / {goals['p99_ms']:.0f} ms"),
        ("memory per idle conn", per_idle <= goals["idle_bytes_per_conn"],
         f"{per_idle:,.0f} B / {goals['idle_bytes_per_conn']:,} B"),
    ]
    for name, ok, text in checks:
        print(f"  {'MET   ' if ok else 'MISSED'} {name:<22} {text}")


class PgRows:
    """Counts committed records in PostgreSQL: the largest id (an index lookup, unlike count(*)).

    Ids come from a sequence: a resent record that conflicts uses one up without a row, so
    resends (the report shows how many) would count; the final figure is a count(*)."""

    def __init__(self, url):
        self.url = url

    def _one(self, sql):
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-d", self.url, "-c", sql],
                           capture_output=True, text=True, timeout=30)
        return int(r.stdout.strip() or 0) if r.returncode == 0 else None

    def rows(self):
        return self._one("SELECT coalesce(max(id), 0) FROM records")

    def count(self):
        return self._one("SELECT count(*) FROM records")


def postmaster_pids(data_dir):
    """The PostgreSQL server's processes: the postmaster (first line of postmaster.pid) and its
    children (backends, WAL writer, checkpointer...)."""
    try:
        with open(os.path.join(data_dir, "postmaster.pid")) as f:
            main = int(f.readline())
    except (OSError, ValueError):
        return []
    pids = [main]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == main:
                    pids.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def cpu_of(pids):
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass
    return total


def run_postgres(args):
    """The load test on PostgreSQL: one node, or two behind HAProxy. Same phases and figures as
    the SQLite run, plus the CPU of PostgreSQL and HAProxy."""
    if args.nodes > 1 and not (args.postgres or args.db):
        sys.exit("[loadtest] --nodes 2 needs a shared database: --postgres or --db postgres://...")
    if args.db and not args.db.startswith(("postgres://", "postgresql://")):
        sys.exit(f"[loadtest] --db {args.db}: expected postgres://USER@HOST:PORT/DB")
    # HAProxy holds two sockets per device (one each side): the open-files limit bounds devices.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lb_maxconn = args.devices + 100
    if args.nodes > 1 and hard != resource.RLIM_INFINITY and 2 * lb_maxconn + 100 > hard:
        lb_maxconn = (hard - 100) // 2
        if args.devices > lb_maxconn - 50:
            log(f"open files hard limit {hard}: HAProxy takes at most {lb_maxconn} connections; "
                f"running {lb_maxconn - 50} devices instead of {args.devices}")
            args.devices = lb_maxconn - 50
    nofile = raise_nofile(args.devices + 1024)
    binary = args.binary or build()
    work = tempfile.mkdtemp(prefix="fleetview-load-")
    log(f"open files limit {nofile}; work dir {work}")
    pg = lb = sim = None
    nodes = []
    try:
        if args.db:
            url = args.db
        else:
            pg = Postgres(base_dir=args.db_dir).start()
            url = pg.url
            log(f"PostgreSQL ({pg.bindir}) at {url}, data in {pg.data}")
        names = ["a", "b"][:args.nodes]
        nodes = [Node(binary, n, url, work, ["--node-id", f"load-{n}"] + args.server_arg,
                      max_connections=args.devices + 1000) for n in names]
        for node in nodes:
            node.start()
        if args.nodes > 1:
            lb = HAProxy(work, nodes[0].tcp, nodes[1].tcp, maxconn=lb_maxconn).start()
            target = lb.addr
            log(f"HAProxy on {lb.addr} (leastconn) in front of {', '.join(n.tcp for n in nodes)}")
        else:
            target = nodes[0].tcp
        db = PgRows(url)
        base_rows = db.rows() or 0
        time.sleep(1.0)
        pids = [n.proc.pid for n in nodes]
        base_rss = sum(proc_status(p, "VmRSS") for p in pids)
        log(f"node pids {pids}, RSS at rest {fmt_bytes(base_rss)}")
        ports = [int(n.tcp.rsplit(":", 1)[1]) for n in nodes]

        t0 = time.time()
        sim = start_simulator(binary, args, target, args.devices, args.rate, args.batch)
        disk = Disk(pg.data if pg else work)
        others = {}
        if pg:
            others["PostgreSQL"] = lambda: cpu_of(postmaster_pids(pg.data))
        if lb:
            others["HAProxy"] = lambda: cpu_of([lb.proc.pid])
        samples = []
        idle = None

        def cpu_now():
            return {name: f() for name, f in others.items()}
        last = (time.time(), base_rows, cpu_of(pids), cpu_of([sim.proc.pid]), cpu_now())
        print(f"{'t':>5} {'phase':<7} {'conns':>6} {'rows':>10} {'rows/s':>8} {'p50ms':>7} {'p99ms':>7} "
              f"{'maxms':>7} {'RSS':>10} {'srv%':>5} {'pg%':>5} {'lb%':>5} {'sim%':>5}", flush=True)
        while sim.proc.poll() is None:
            time.sleep(1.0)
            now = time.time()
            t = now - t0
            if any(n.proc.poll() is not None for n in nodes):
                log("a node exited during the run; see its log in " + work)
                break
            rss = sum(proc_status(p, "VmRSS") for p in pids)
            srv_cpu, sim_cpu, oth = cpu_of(pids), cpu_of([sim.proc.pid]), cpu_now()
            rows = db.rows()
            rows = last[1] if rows is None else rows - base_rows
            conns = sum(established(p) for p in ports)
            io = disk.sample()
            dt = now - last[0]
            s = sim.latest
            phase = "ramp" if t < args.ramp else ("idle" if t < args.ramp + args.hold else "data")
            threads = {}
            for p in pids:
                for name, (run, wait) in thread_times(p).items():
                    r0, w0 = threads.get(name, (0.0, 0.0))
                    threads[name] = (r0 + run, w0 + wait)
            sample = {
                "threads": threads, "srv_cpu_s": srv_cpu, "load1": os.getloadavg()[0],
                "t": t, "phase": phase, "conns": conns, "rows": rows, "rows_per_s": (rows - last[1]) / dt,
                "p50": float(s.get("p50_ms", 0)), "p99": float(s.get("p99_ms", 0)),
                "max": float(s.get("max_ms", 0)), "rss": rss,
                "srv_cpu": (srv_cpu - last[2]) / dt * 100, "sim_cpu": (sim_cpu - last[3]) / dt * 100,
                "cpu": {k: (oth[k] - last[4][k]) / dt * 100 for k in oth}, "cpu_s": oth,
                "sim_connected": int(s.get("connected", 0)),
                "disk_mb_s": io[0] if io else None, "disk_busy": io[1] if io else None,
            }
            samples.append(sample)
            last = (now, rows, srv_cpu, sim_cpu, oth)
            print(f"{t:5.0f} {phase:<7} {conns:>6} {rows:>10} {sample['rows_per_s']:>8.0f} {sample['p50']:>7.2f} "
                  f"{sample['p99']:>7.2f} {sample['max']:>7.1f} {fmt_bytes(rss):>10} {sample['srv_cpu']:>5.0f} "
                  f"{sample['cpu'].get('PostgreSQL', 0):>5.0f} {sample['cpu'].get('HAProxy', 0):>5.0f} "
                  f"{sample['sim_cpu']:>5.0f}", flush=True)
            if phase == "idle" and t >= args.ramp + args.hold - 2.0:
                idle = {"conns": conns, "rss": rss, "fds": sum(open_fds(p) for p in pids)}
        summary = sim.wait()
        db_rows = (db.count() or 0) - base_rows if not args.db else (db.rows() or 0) - base_rows
        peak_rss = sum(proc_status(p, "VmHWM") for p in pids)
    except ServiceError as e:
        sys.exit(f"[loadtest] {e}")
    finally:
        stop_all(sim, nodes, lb, pg, keep=args.keep)

    where = "a private PostgreSQL" if pg else "PostgreSQL"
    storage = (f"{where}, {args.nodes} nodes behind HAProxy (leastconn)" if args.nodes > 1
               else f"{where}, one node")
    report(args, samples, idle, base_rss, peak_rss, summary, db_rows, goals=GOALS_POSTGRES, storage=storage)
    if args.keep:
        log(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def default_max_frame(binary):
    """The server's --max-frame default, from its --help (the partial-frame attack sends frames
    of exactly that size)."""
    out = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True).stdout
    m = re.search(r"--max-frame <MAX_FRAME>.*?\[default: (\d+)\]", out, re.S)
    return int(m.group(1)) if m else 65_536


def run_attack(args, kinds):
    """Real devices against a server under attack: devices held, p99 ack latency, server RSS."""
    devices = args.devices if "--devices" in sys.argv else 1000
    rate = args.rate if "--rate" in sys.argv else 1.0
    batch = args.batch if "--batch" in sys.argv else 1
    nofile = raise_nofile(args.attackers + devices + 1024)
    binary = args.binary or build()
    max_frame = default_max_frame(binary)
    work = tempfile.mkdtemp(prefix="fleetview-attack-")
    ready = os.path.join(work, "ready.json")
    server_log = open(os.path.join(work, "serve.log"), "w")
    log(f"open files limit {nofile}; work dir {work}")
    serve_cmd = [
        binary, "serve", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--http", "127.0.0.1:0",
        "--db", os.path.join(work, "attack.db"), "--ready-file", ready, "--sync", args.sync,
    ] + args.server_arg
    env = dict(os.environ, FLEETVIEW_LOG=os.environ.get("FLEETVIEW_LOG", "warn"))
    soft = args.server_nofile

    def limit_files():
        if soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    server = subprocess.Popen(serve_cmd, stdout=subprocess.DEVNULL, stderr=server_log, env=env,
                              preexec_fn=limit_files)
    attack = None
    sim = None
    samples = []
    try:
        deadline = time.time() + 30
        while not os.path.exists(ready) or os.path.getsize(ready) == 0:
            if server.poll() is not None or time.time() > deadline:
                sys.exit(f"[loadtest] the server did not start; see {server_log.name}")
            time.sleep(0.05)
        time.sleep(0.5)
        tcp = json.load(open(ready))["tcp"]
        host, port = tcp.rsplit(":", 1)
        base_rss = proc_status(server.pid, "VmRSS")
        log(f"server pid {server.pid} on {tcp}, RSS at rest {fmt_bytes(base_rss)}")

        attack = Attack(host, int(port), args.attackers, kinds, max_frame, pause=args.attack_pause)
        attack.start()
        log(f"attack: {args.attackers} sockets ({', '.join(kinds)}; partial frames of {max_frame} bytes) "
            f"from {len(attack.sources)} addresses")
        t_attack = time.time()
        while time.time() - t_attack < 60:
            snap = attack.snapshot()
            if snap["opened"] >= args.attackers:
                break
            time.sleep(0.5)
        log(f"attack ramped in {time.time() - t_attack:.1f} s: {attack.snapshot()}")
        time.sleep(2.0)

        t0 = time.time()
        sim = start_simulator(binary, args, tcp, devices, rate, batch)
        print(f"{'t':>5} {'phase':<7} {'devices':>7} {'p99ms':>7} {'attack open':>11} {'closed':>8} "
              f"{'srv conns':>9} {'RSS':>10}", flush=True)
        while sim.proc.poll() is None:
            time.sleep(1.0)
            t = time.time() - t0
            try:
                rss = proc_status(server.pid, "VmRSS")
            except OSError:
                break
            snap = attack.snapshot()
            phase = "ramp" if t < args.ramp else ("idle" if t < args.ramp + args.hold else "data")
            connected = int(sim.latest.get("connected", 0))
            conns = established(int(port))
            samples.append({"t": t, "phase": phase, "connected": connected, "rss": rss, **snap})
            print(f"{t:5.0f} {phase:<7} {connected:>7} {float(sim.latest.get('p99_ms', 0)):>7.2f} "
                  f"{snap['open']:>11} {snap['closed_by_server']:>8} {conns:>9} {fmt_bytes(rss):>10}", flush=True)
        summary = sim.wait() or {}
        peak_rss = proc_status(server.pid, "VmHWM")
    finally:
        if sim and sim.proc.poll() is None:
            sim.proc.kill()
        if attack:
            attack.stop()
        stop_server(server)
        server_log.close()

    after_ramp = [s for s in samples if s["phase"] != "ramp"]
    lowest = min((s["connected"] for s in after_ramp), default=0)
    final = samples[-1]["connected"] if samples else 0
    lat = summary.get("ack_latency", {})
    counters = summary.get("counters", {})
    end = samples[-1] if samples else {}
    print()
    print(f"fleetview load test under attack: {args.attackers:,} hostile sockets ({', '.join(kinds)}; "
          f"reopened {args.attack_pause} s after the server closes one) and {devices:,} devices "
          f"({rate} records/s each, frames of {batch})")
    print(f"  devices connected     {final:,} / {devices:,} at the end, lowest {lowest:,} after the ramp "
          f"(logins {counters.get('logins', 0):,}, reconnects {counters.get('reconnects', 0)}, "
          f"connect errors {counters.get('connect_errors', 0)}, ack timeouts {counters.get('ack_timeouts', 0)})")
    print(f"  ack latency           p50 {lat.get('p50_ms', 0):.2f} ms, p99 {lat.get('p99_ms', 0):.2f} ms, "
          f"max {lat.get('max_ms', 0):.2f} ms ({lat.get('count', 0):,} acks)")
    print(f"  attack                {end.get('open', 0):,} hostile sockets open at the end, "
          f"{end.get('closed_by_server', 0):,} closed by the server, {end.get('connect_errors', 0):,} connect errors")
    print(f"  server memory         {fmt_bytes(base_rss)} at rest, peak {fmt_bytes(peak_rss)}")
    if soft:
        print(f"  server started with   an open-files soft limit of {soft}")
    print()
    checks = [
        ("devices connected", lowest >= devices and final >= devices, f"{lowest:,} / {devices:,}"),
        ("p99 ack latency", 0 < lat.get("p99_ms", 1e9) <= GOALS["p99_ms"],
         f"{lat.get('p99_ms', 0):.1f} ms / {GOALS['p99_ms']:.0f} ms"),
        ("server RSS", peak_rss <= 1 << 30, f"{fmt_bytes(peak_rss)} / 1 GiB"),
    ]
    for name, ok, text in checks:
        print(f"  {'MET   ' if ok else 'MISSED'} {name:<22} {text}")
    if args.keep:
        log(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def profile(perf_data):
    if not os.path.exists(perf_data):
        log("perf recorded nothing (is perf installed and perf_event_paranoid <= 2?)")
        return
    print("\nServer CPU profile (perf, cpu-clock, self time, top 25 symbols):")
    out = subprocess.run(
        ["perf", "report", "-i", perf_data, "--stdio", "--no-children", "--sort", "symbol",
         "--percent-limit", "0.7", "-g", "none"],
        capture_output=True, text=True,
    ).stdout
    lines = [l for l in out.splitlines() if l.strip() and not l.startswith("#")]
    for l in lines[:25]:
        print("  " + l.strip())
    print("\nBy thread:")
    out = subprocess.run(
        ["perf", "report", "-i", perf_data, "--stdio", "--no-children", "--sort", "comm", "-g", "none"],
        capture_output=True, text=True,
    ).stdout
    for l in [l for l in out.splitlines() if l.strip() and not l.startswith("#")][:8]:
        print("  " + l.strip())


if __name__ == "__main__":
    main()
