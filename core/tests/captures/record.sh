#!/usr/bin/env bash
# Regenerates the real captures of core/tests/captures/: tcpdump on the loopback while
# `fleetview simulate` talks to `fleetview serve` (and `fleetview send` queues a command).
# Needs root (or CAP_NET_RAW) and tcpdump (Debian: apt-get install tcpdump). The server runs on
# a private port (35027 by default, CAPTURE_PORT to change) with a throwaway database.
#
#   tcp_devices.pcap   3 devices over TCP, 8E, 12 records each in frames of 4 (Ethernet on lo)
#   udp_devices.pcap   2 devices over the UDP channel, Codec 8 (Linux cooked capture v2, -i any)
#   tcp_command.pcap   1 device over TCP, a getinfo command sent through the API and answered
#
# Usage: core/tests/captures/record.sh   (from anywhere; builds the binary with feature server)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
port=${CAPTURE_PORT:-35027}
http=$((port + 1))
command -v tcpdump >/dev/null || { echo "record.sh: tcpdump is missing (apt-get install tcpdump)" >&2; exit 1; }
cargo build --quiet --manifest-path "$root/Cargo.toml" -p fleetview --features server --bin fleetview
bin=$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/fleetview
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start_server() {
  rm -f "$work/ready.json"
  "$bin" serve --tcp "127.0.0.1:$port" --udp "127.0.0.1:$port" --http "127.0.0.1:$http" \
    --db "$work/db-$1.sqlite" --ready-file "$work/ready.json" 2>"$work/serve-$1.log" &
  server=$!
  pids+=("$server")
  for _ in $(seq 1 100); do [ -s "$work/ready.json" ] && return; sleep 0.1; done
  echo "record.sh: the server did not start" >&2; cat "$work/serve-$1.log" >&2; exit 1
}

# tcpdump writes each packet as it comes (-U); started before the devices, stopped after.
start_capture() {
  local iface=$1 out=$2
  tcpdump -i "$iface" --immediate-mode -U -s 0 -w "$out" "port $port" 2>"$work/tcpdump.log" &
  capture=$!
  pids+=("$capture")
  for _ in $(seq 1 100); do
    # "listening on" comes before the socket sees every interface ("any"): give it a second.
    grep -q "listening on" "$work/tcpdump.log" && { sleep 1; return; }
    sleep 0.1
  done
  echo "record.sh: tcpdump did not start" >&2; cat "$work/tcpdump.log" >&2; exit 1
}

stop() {
  sleep 0.5
  kill -INT "$1"
  wait "$1" 2>/dev/null || true
}

# 1. TCP, three devices.
start_server tcp
start_capture lo "$here/tcp_devices.pcap"
"$bin" simulate --devices 3 --server "127.0.0.1:$port" --codec 8E --rate 20 --batch 4 --records 12 \
  --seed 7 --start-time 1767225600000 >/dev/null 2>&1
stop "$capture"; stop "$server"

# 2. UDP, two devices, on the "any" interface (Linux cooked capture v2).
start_server udp
start_capture any "$here/udp_devices.pcap"
"$bin" simulate --devices 2 --udp --server "127.0.0.1:$port" --codec 8 --rate 20 --batch 3 --records 6 \
  --seed 8 --start-time 1767225600000 --imei-base 35209308100000 >/dev/null 2>&1
stop "$capture"; stop "$server"

# 3. A command: the device stays connected while `fleetview send` queues getinfo.
start_server cmd
start_capture lo "$here/tcp_command.pcap"
"$bin" simulate --devices 1 --server "127.0.0.1:$port" --codec 8 --rate 2 --batch 2 --duration 6 \
  --seed 9 --start-time 1767225600000 --imei-base 35209308200000 >/dev/null 2>&1 &
sim=$!
pids+=("$sim")
imei=$(python3 -c '
base = "35209308200000"
digits = [int(c) for c in base]
total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
print(base + str((10 - total % 10) % 10))')
sleep 1.5
"$bin" send "$imei" getinfo --server "http://127.0.0.1:$http" --timeout 20 >/dev/null
wait "$sim" || true
stop "$capture"; stop "$server"

ls -l "$here"/*.pcap
