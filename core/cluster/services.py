"""Private servers for the cluster test and the load test, started and stopped by the project:

- `Postgres`: a PostgreSQL from Debian's packages (installed when missing), `initdb` in a
  temporary directory, listening on 127.0.0.1 on a free port, run as an unprivileged user when
  this script runs as root. It can be stopped as a crash would stop it (`pg_ctl stop -m
  immediate`) and started again on the same data.
- `HAProxy`: Debian's haproxy (installed when missing) with `core/cluster/haproxy.cfg`, the
  addresses given through the environment variables that file reads.
- `Mosquitto`: Debian's MQTT broker (installed when missing) on a free loopback port, with a
  configuration and persistence in a temporary directory.
- `Node`: one `fleetview serve` process on fixed ports (so that it can be killed and started
  again where HAProxy expects it).
- `Simulator`: `fleetview simulate` with its progress lines parsed as they come.

Used as a library (`core/tests/cluster/cluster_test.py`, `core/loadtest/loadtest.py`), or on its
own to get a throw-away PostgreSQL for development:

    python3 core/cluster/services.py postgres             # prints the URL; Ctrl-C stops and deletes it
    python3 core/cluster/services.py with-postgres CMD... # CMD with FLEETVIEW_TEST_PG set (.ci/with-postgres)
    python3 core/cluster/services.py with-mosquitto CMD... # CMD with FLEETVIEW_TEST_MQTT=127.0.0.1:PORT
"""

import glob
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HAPROXY_CFG = os.path.join(HERE, "haproxy.cfg")

# What the private PostgreSQL runs with, beyond initdb's defaults. Durability stays on (fsync,
# synchronous_commit, full_page_writes): a node acks a device only after COMMIT returns, and
# that promise is worth what the commit is.
POSTGRES_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "shared_buffers": "'256MB'",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    # Fewer checkpoints during a load test; recovery after a crash replays at most this much WAL.
    "max_wal_size": "'2GB'",
    "checkpoint_timeout": "'15min'",
    "log_min_messages": "warning",
    "log_connections": "off",
}


def log(msg):
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


class ServiceError(Exception):
    """A server could not be installed, started or queried; the message says which and why."""


def free_port():
    """A TCP port nothing listens on right now (127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def apt_install(*packages):
    """Install Debian packages (as root, or through sudo)."""
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    log(f"installing Debian's {' '.join(packages)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", *packages], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as e:
        raise ServiceError(f"apt-get install {' '.join(packages)} failed: {e}") from e


def postgres_bindir(install=True):
    """The directory of initdb/pg_ctl/postgres: Debian keeps them in /usr/lib/postgresql/N/bin,
    off the PATH; the newest version wins. Installs Debian's postgresql when there is none."""
    def find():
        found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
        if found:
            found.sort(key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
            return os.path.dirname(found[-1])
        initdb = shutil.which("initdb")
        return os.path.dirname(os.path.realpath(initdb)) if initdb else None
    bindir = find()
    if bindir is None and install:
        apt_install("postgresql")
        bindir = find()
    if bindir is None:
        raise ServiceError("no PostgreSQL server binaries (initdb) after installing Debian's postgresql")
    return bindir


def haproxy_binary(install=True):
    path = shutil.which("haproxy") or (os.path.exists("/usr/sbin/haproxy") and "/usr/sbin/haproxy")
    if not path and install:
        apt_install("haproxy")
        path = shutil.which("haproxy") or (os.path.exists("/usr/sbin/haproxy") and "/usr/sbin/haproxy")
    if not path:
        raise ServiceError("no haproxy after installing Debian's haproxy")
    return path


def terminate(proc, timeout=10):
    """SIGTERM a process we started (None or already gone: nothing), SIGKILL after `timeout` s."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def mosquitto_binary(install=True):
    def find():
        return shutil.which("mosquitto") or (os.path.exists("/usr/sbin/mosquitto") and "/usr/sbin/mosquitto")
    path = find()
    if (not path or not shutil.which("mosquitto_sub")) and install:
        apt_install("mosquitto", "mosquitto-clients")
        path = find()
    if not path:
        raise ServiceError("no mosquitto after installing Debian's mosquitto")
    return path


class Mosquitto:
    """A private MQTT broker: Debian's mosquitto on 127.0.0.1 and a free port, its configuration,
    persistence and log in a temporary directory (removed by `close`)."""

    def __init__(self):
        self.binary = mosquitto_binary()
        self.dir = tempfile.mkdtemp(prefix="fleetview-mosquitto-")
        self.port = free_port()
        self.proc = None

    def start(self, timeout=20):
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    f"log_dest file {self.dir}/mosquitto.log\nmax_queued_messages 1000000\n")
        if os.geteuid() == 0:
            # As root it would switch to the `mosquitto` account, which must be able to read
            # the directory and write the log.
            os.chmod(self.dir, 0o777)
        self.proc = subprocess.Popen([self.binary, "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr.log"), "w"))
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise ServiceError(f"mosquitto exited with {self.proc.returncode}; see {self.dir}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if time.time() > deadline:
                    raise ServiceError(f"mosquitto did not listen on port {self.port} within {timeout} s")
                time.sleep(0.05)

    def close(self):
        terminate(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def unprivileged_user():
    """Who runs PostgreSQL when we are root (it refuses to run as root): Debian's `postgres`
    account when the package created it, else `nobody`."""
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ServiceError("running as root and neither a `postgres` nor a `nobody` account exists")


class Postgres:
    """A private PostgreSQL cluster in a temporary directory.

    `url` is what `fleetview serve --db` takes: postgres://fleetview@127.0.0.1:PORT/fleetview
    (trust authentication, reachable only from this machine)."""

    USER = "fleetview"
    DB = "fleetview"

    def __init__(self, base_dir=None, port=None, settings=None):
        self.bindir = postgres_bindir()
        self.psql_bin = shutil.which("psql") or os.path.join(self.bindir, "psql")
        self.dir = tempfile.mkdtemp(prefix="fleetview-pg-", dir=base_dir)
        self.data = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "postgres.log")
        self.port = port or free_port()
        self.settings = dict(POSTGRES_SETTINGS, **(settings or {}))
        self.account = unprivileged_user() if os.geteuid() == 0 else None
        if self.account:
            os.chown(self.dir, self.account.pw_uid, self.account.pw_gid)
        self._initdb()

    @property
    def url(self):
        return f"postgres://{self.USER}@127.0.0.1:{self.port}/{self.DB}"

    def _run(self, args, **kw):
        """Run a PostgreSQL tool as the account that owns the data directory."""
        if self.account:
            kw.update(user=self.account.pw_uid, group=self.account.pw_gid, extra_groups=[])
        kw.setdefault("cwd", self.dir)
        return subprocess.run(args, capture_output=True, text=True, **kw)

    def _check(self, what, result):
        if result.returncode != 0:
            tail = ""
            if os.path.exists(self.logfile):
                with open(self.logfile, errors="replace") as f:
                    tail = "".join(f.readlines()[-20:])
            raise ServiceError(f"PostgreSQL {what} failed (exit {result.returncode}): "
                               f"{result.stderr.strip() or result.stdout.strip()}\n{tail}")
        return result

    def _initdb(self):
        self._check("initdb", self._run([
            os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", self.USER,
            "--auth=trust", "--encoding=UTF8", "--no-locale",
        ]))
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# fleetview's private instance (core/cluster/services.py)\n")
            f.write(f"port = {self.port}\n")
            f.write(f"unix_socket_directories = '{self.dir}'\n")
            for k, v in self.settings.items():
                f.write(f"{k} = {v}\n")

    def start(self, timeout=60):
        self._check("start", self._run([
            os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l", self.logfile,
            "-w", "-t", str(timeout), "start",
        ]))
        if not getattr(self, "_created", False):
            self.psql(f"CREATE DATABASE {self.DB}", db="postgres")
            self._created = True
        return self

    def stop(self, mode="fast"):
        """Stop the server: `fast` (clean shutdown) or `immediate` (as a crash: no checkpoint,
        recovery replays the WAL at the next start)."""
        self._check(f"stop -m {mode}", self._run([
            os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop",
        ]))

    def running(self):
        r = self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "status"])
        return r.returncode == 0

    def psql(self, sql, db=None, stdin=None):
        """Run SQL; the rows as lists of strings (tab-separated output, no headers)."""
        r = subprocess.run(
            [self.psql_bin, "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", self.USER, "-d", db or self.DB, "-c", sql],
            capture_output=True, text=True, input=stdin,
        )
        if r.returncode != 0:
            raise ServiceError(f"psql {sql[:80]!r}: {r.stderr.strip()}")
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def psql_script(self, script, db=None):
        """Run several statements (psql -f -): the output rows of the whole script."""
        r = subprocess.run(
            [self.psql_bin, "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", self.USER, "-d", db or self.DB, "-f", "-"],
            capture_output=True, text=True, input=script,
        )
        if r.returncode != 0:
            raise ServiceError(f"psql script: {r.stderr.strip()}")
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def close(self, keep=False):
        if self.running():
            try:
                self.stop("fast")
            except ServiceError:
                self.stop("immediate")
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


class HAProxy:
    """HAProxy with core/cluster/haproxy.cfg in front of two nodes (`a` and `b`)."""

    def __init__(self, work_dir, node_a, node_b, bind=None, maxconn=20000):
        self.binary = haproxy_binary()
        self.port = free_port() if bind is None else int(bind.rsplit(":", 1)[1])
        self.addr = bind or f"127.0.0.1:{self.port}"
        self.stats_path = os.path.join(work_dir, "haproxy.sock")
        self.logfile = open(os.path.join(work_dir, "haproxy.log"), "w")
        self.env = dict(os.environ, FLEETVIEW_LB_BIND=self.addr, FLEETVIEW_LB_STATS=self.stats_path,
                        FLEETVIEW_NODE_A=node_a, FLEETVIEW_NODE_B=node_b, FLEETVIEW_LB_MAXCONN=str(maxconn))
        self.proc = None

    def start(self, timeout=20):
        check = subprocess.run([self.binary, "-c", "-q", "-f", HAPROXY_CFG], env=self.env,
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise ServiceError(f"haproxy -c {HAPROXY_CFG}: {check.stderr.strip()}")
        # -db: stay in the foreground, so the process is ours to stop.
        self.proc = subprocess.Popen([self.binary, "-db", "-f", HAPROXY_CFG], env=self.env,
                                     stdout=self.logfile, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise ServiceError(f"haproxy exited with {self.proc.returncode}; see {self.logfile.name}")
            try:
                self.stats()
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                return self
            except OSError:
                if time.time() > deadline:
                    raise ServiceError(f"haproxy did not listen on {self.addr} within {timeout} s")
                time.sleep(0.1)

    def stats(self):
        """Per server of the `nodes` backend: {"a": {"status": "UP", "scur": 12, ...}, ...}."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.stats_path)
            s.sendall(b"show stat\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        lines = out.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        result = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "nodes" and row.get("svname") not in ("BACKEND", None):
                result[row["svname"]] = {
                    "status": row.get("status"),
                    "scur": int(row.get("scur") or 0),
                    "stot": int(row.get("stot") or 0),
                }
        return result

    def close(self):
        terminate(self.proc)
        self.logfile.close()


class Node:
    """One `fleetview serve` on fixed TCP and HTTP ports (its UDP port is left to the system)."""

    def __init__(self, binary, name, db, work_dir, extra_args=(), log_level="warn", max_connections=None):
        self.binary = binary
        self.name = name
        self.db = db
        self.work_dir = work_dir
        self.tcp = f"127.0.0.1:{free_port()}"
        self.http = f"127.0.0.1:{free_port()}"
        self.extra_args = list(extra_args)
        self.log_level = log_level
        self.max_connections = max_connections
        self.proc = None
        self.starts = 0

    @property
    def http_url(self):
        return f"http://{self.http}"

    def start(self, timeout=60):
        self.starts += 1
        ready = os.path.join(self.work_dir, f"node-{self.name}.ready")
        if os.path.exists(ready):
            os.remove(ready)
        logpath = os.path.join(self.work_dir, f"node-{self.name}.log")
        self.logfile = open(logpath, "a")
        self.logfile.write(f"--- start {self.starts} ---\n")
        self.logfile.flush()
        cmd = [self.binary, "serve", "--tcp", self.tcp, "--udp", "127.0.0.1:0", "--http", self.http,
               "--db", self.db, "--ready-file", ready, "--idle-timeout", "3600"]
        if self.max_connections:
            cmd += ["--max-connections", str(self.max_connections)]
        cmd += self.extra_args
        env = dict(os.environ, FLEETVIEW_LOG=os.environ.get("FLEETVIEW_LOG", self.log_level))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.logfile, env=env)
        deadline = time.time() + timeout
        while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
            if self.proc.poll() is not None:
                raise ServiceError(f"node {self.name} exited with {self.proc.returncode}; see {logpath}")
            if time.time() > deadline:
                raise ServiceError(f"node {self.name} not ready within {timeout} s; see {logpath}")
            time.sleep(0.05)
        with open(ready) as f:
            self.ready = json.load(f)
        return self

    def kill(self):
        """SIGKILL: no shutdown, no goodbye to the devices or the database."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "logfile", None):
            self.logfile.close()


class Simulator:
    """Runs `fleetview simulate --report-every 1 --json` and keeps its latest progress line
    (key=value pairs); `wait` returns the final JSON statistics."""

    def __init__(self, cmd, echo=None):
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.latest = {}
        self.lines = []
        self.stdout = ""
        self.echo = echo or (lambda line: log("simulate: " + line))
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for line in self.proc.stderr:
            line = line.rstrip()
            if line.startswith("t="):
                self.latest = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                self.lines.append(self.latest)
            elif line:
                self.echo(line)

    def value(self, key, default=0):
        """A counter of the latest progress line, as a number."""
        v = self.latest.get(key)
        if v is None:
            return default
        return float(v.rstrip("/s")) if "." in v or v.endswith("/s") else int(v)

    def interrupt(self):
        """Stop as Ctrl-C does: the devices stop, the statistics are printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def wait(self, timeout=60):
        try:
            self.stdout, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.stdout, _ = self.proc.communicate()
        self._t.join(timeout=5)
        return json.loads(self.stdout) if self.stdout.strip() else None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def stop_all(sim, nodes, lb, pg, keep=False):
    """Tear a deployment down, whatever of it was started (None for what was not): the
    simulator first, then the nodes, HAProxy and PostgreSQL."""
    if sim:
        sim.kill()
    for node in nodes:
        node.stop()
    if lb:
        lb.close()
    if pg:
        pg.close(keep=keep)


def wait_for(what, predicate, timeout, every=0.25):
    """Poll `predicate` until it returns a true value (returned) or `timeout` seconds pass
    (ServiceError naming `what`)."""
    deadline = time.time() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.time() > deadline:
            raise ServiceError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def main():
    argv = sys.argv[1:]
    if argv == ["postgres"]:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        pg = Postgres().start()
        print(pg.url, flush=True)
        log(f"PostgreSQL {pg.bindir} in {pg.dir}; Ctrl-C stops it and deletes the directory")
        try:
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        finally:
            pg.close()
    elif argv[:1] == ["with-postgres"] and len(argv) > 1:
        # The server tests (core/tests/server_*.rs) on PostgreSQL: FLEETVIEW_TEST_PG names the
        # server; each test makes its own database in it.
        pg = Postgres().start()
        log(f"PostgreSQL on 127.0.0.1:{pg.port} (data in {pg.data})")
        try:
            env = dict(os.environ, FLEETVIEW_TEST_PG=f"postgres://{pg.USER}@127.0.0.1:{pg.port}/postgres")
            # For server_pg_crash.rs: a crash of PostgreSQL (`-m immediate`) and its restart.
            restart = [os.path.join(pg.bindir, "pg_ctl"), "-D", pg.data, "-l", pg.logfile,
                       "-m", "immediate", "-w", "-t", "60", "restart"]
            if pg.account:
                restart = ["runuser", "-u", pg.account.pw_name, "--"] + restart
            env["FLEETVIEW_TEST_PG_RESTART"] = shlex.join(restart)
            code = subprocess.run(argv[1:], env=env).returncode
        finally:
            pg.close()
        sys.exit(code)
    elif argv[:1] == ["with-mosquitto"] and len(argv) > 1:
        # The MQTT forwarding test (core/tests/server_mqtt.rs): FLEETVIEW_TEST_MQTT names the broker.
        broker = Mosquitto().start()
        log(f"mosquitto on 127.0.0.1:{broker.port} ({broker.dir})")
        try:
            env = dict(os.environ, FLEETVIEW_TEST_MQTT=f"127.0.0.1:{broker.port}")
            code = subprocess.run(argv[1:], env=env).returncode
        finally:
            broker.close()
        sys.exit(code)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
