"""Hostile clients for `loadtest.py --attack`: thousands of sockets against `fleetview serve`.

Each socket comes from one of many loopback addresses (127.0.0.2 and up: Linux routes all of
127.0.0.0/8 to lo), so that the server's per-address limits see distinct hosts, as a botnet
would look. Kinds of attacker (each socket does one, the sockets are split evenly):

    idle     connect and never send a byte
    partial  log in with its own IMEI and send a frame of the largest size but its last byte
    slow     send a login one byte a second
    garbage  send 4 KiB of random bytes

A socket the server closes is opened again after --attack-pause seconds: the attack keeps its
number of sockets up for as long as it runs. One thread, one epoll loop (selectors).
"""

import errno
import os
import random
import selectors
import socket
import struct
import threading
import time

KINDS = ("idle", "partial", "slow", "garbage")


def login_frame(imei):
    return struct.pack(">H", len(imei)) + imei.encode()


def partial_frame(max_frame):
    """The start of a Codec 8 frame announcing `max_frame` bytes of data, one byte short."""
    body = bytes([0x08]) + b"\x01" * (max_frame - 1)
    return b"\x00\x00\x00\x00" + struct.pack(">I", max_frame) + body + b"\x00\x00\x00"


class Attack:
    def __init__(self, host, port, sockets, kinds, max_frame, pause=1.0, sources=100, seed=1):
        self.addr = (host, port)
        self.kinds = kinds
        self.max_frame = max_frame
        self.pause = pause
        self.sources = [f"127.0.0.{2 + i % 250}" for i in range(sources)]
        self.rng = random.Random(seed)
        self.want = sockets
        self.sel = selectors.DefaultSelector()
        self.stop_flag = False
        self.lock = threading.Lock()
        # Counters read by the load test.
        self.opened = 0
        self.open = 0
        self.closed_by_server = 0
        self.connect_errors = 0
        self.next_imei = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stop_flag = True
        self.thread.join(timeout=30)

    def snapshot(self):
        with self.lock:
            return {"opened": self.opened, "open": self.open, "closed_by_server": self.closed_by_server,
                    "connect_errors": self.connect_errors}

    def _payload(self, kind):
        if kind == "partial":
            self.next_imei += 1
            return login_frame(f"99{self.next_imei:013d}") + partial_frame(self.max_frame)
        if kind == "slow":
            self.next_imei += 1
            return login_frame(f"98{self.next_imei:013d}")
        if kind == "garbage":
            return self.rng.randbytes(4096)
        return b""

    def _open(self, slot):
        kind = self.kinds[slot % len(self.kinds)]
        src = self.sources[slot % len(self.sources)]
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((src, 0))
            err = s.connect_ex(self.addr)
        except OSError:
            s.close()
            with self.lock:
                self.connect_errors += 1
            return False
        if err not in (0, errno.EINPROGRESS):
            s.close()
            with self.lock:
                self.connect_errors += 1
            return False
        state = {"slot": slot, "kind": kind, "out": self._payload(kind), "connected": False, "next_byte": 0.0}
        self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, state)
        return True

    def _close(self, s, state, by_server):
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
        with self.lock:
            if state["connected"]:
                self.open -= 1
            if by_server:
                self.closed_by_server += 1
        self.reopen.append((time.time() + self.pause, state["slot"]))

    def _run(self):
        self.reopen = [(0.0, slot) for slot in range(self.want)]
        self.next_slow_scan = 0.0
        buf = bytearray(4096)
        while not self.stop_flag:
            now = time.time()
            due = [r for r in self.reopen if r[0] <= now]
            if due:
                self.reopen = [r for r in self.reopen if r[0] > now]
                # Open at most 2,000 a round, so that reads keep being served during the ramp.
                for _, slot in due[:2000]:
                    if not self._open(slot):
                        self.reopen.append((now + self.pause, slot))
                self.reopen.extend(due[2000:])
            for key, mask in self.sel.select(timeout=0.05):
                s, state = key.fileobj, key.data
                if mask & selectors.EVENT_WRITE and not state["connected"]:
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                        self._close(s, state, by_server=False)
                        with self.lock:
                            self.connect_errors += 1
                        continue
                    state["connected"] = True
                    with self.lock:
                        self.opened += 1
                        self.open += 1
                if mask & selectors.EVENT_WRITE and state["connected"]:
                    out = state["out"]
                    if state["kind"] == "slow":
                        if out and now >= state["next_byte"]:
                            out = out[:1]
                            state["next_byte"] = now + 1.0
                        else:
                            out = b""
                    if out:
                        try:
                            n = s.send(out)
                            state["out"] = state["out"][n:]
                        except BlockingIOError:
                            pass
                        except OSError:
                            self._close(s, state, by_server=True)
                            continue
                    if not state["out"] or state["kind"] == "slow":
                        events = selectors.EVENT_READ
                        if state["out"]:
                            # Slow senders want to write again in a second: poll writability
                            # only then (the loop wakes every 50 ms).
                            events |= selectors.EVENT_WRITE if now >= state["next_byte"] else 0
                        self.sel.modify(s, events, state)
                if mask & selectors.EVENT_READ:
                    try:
                        n = s.recv_into(buf)
                    except BlockingIOError:
                        continue
                    except OSError:
                        n = 0
                    if n == 0:
                        self._close(s, state, by_server=True)
            # Slow senders whose second has passed want to write again (looked at 4 times a second).
            if "slow" in self.kinds and now >= self.next_slow_scan:
                self.next_slow_scan = now + 0.25
                for key in list(self.sel.get_map().values()):
                    st = key.data
                    if st["kind"] == "slow" and st["connected"] and st["out"] and now >= st["next_byte"] \
                            and not key.events & selectors.EVENT_WRITE:
                        self.sel.modify(key.fileobj, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
