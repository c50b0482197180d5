# Fleetview: the two commands of the README are `make run` (the main job) and `make test`
# (every test). Both install what a fresh machine lacks first (.ci/setup skips what is present).

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: run test setup setup-run lint test-core test-cli test-postgres test-cluster test-forward test-openapi fuzz-smoke bench bench-reports bench-pcap test-capture test-www test-worker test-web loadtest

## The main job: build the web UI, then serve it with the TCP/UDP listeners (port 5027) and the
## HTTP API (http://127.0.0.1:8080/) on an embedded SQLite database (fleetview.db).
run: setup-run
	npm --prefix web run build -- --lean
	$(CARGO) run --release --features server --bin fleetview -- serve --db fleetview.db --web web/dist

## Every test: lint, core (unit, vectors, property, truncation, CLI, docs), the decoder CLI alone,
## the server tests on PostgreSQL, the cluster, fuzz smoke, npm package, Worker in workerd, playground in headless Chromium.
test: setup lint test-core test-cli test-postgres test-cluster test-forward test-openapi fuzz-smoke test-www test-worker test-web

setup-run:
	.ci/setup web

setup:
	.ci/setup all

lint:
	$(CARGO) fmt --all -- --check
	# core's modules form layers without cycles (prints them; fails on a cycle).
	python3 core/tools/layers.py
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings
	# The Worker's edge module (and the playground) are built for wasm32: lint that build too.
	$(CARGO) clippy -p fleetview-worker -p fleetview-web --target wasm32-unknown-unknown \
		--all-targets --all-features -- -D warnings
	# The fuzz crate is a workspace of its own.
	$(CARGO) clippy --manifest-path core/fuzz/Cargo.toml --all-targets -- -D warnings
	# no_std + alloc: the codec builds without the standard library (as an rlib; the cdylib
	# crate type is for the npm package and needs std).
	$(CARGO) rustc -p fleetview --no-default-features --lib --crate-type rlib \
		--target wasm32-unknown-unknown --release -- -D warnings

test-core:
	$(CARGO) test -p fleetview --all-features

## Whole captures: generated ones, the tcpdump recordings of core/tests/captures, and the
## `fleetview pcap` CLI (feature `cli` alone).
test-capture:
	$(CARGO) test -p fleetview --no-default-features --features capture --test capture

## `fleetview decode` built with feature `cli` alone: no server dependencies, `decode` only.
test-cli:
	$(CARGO) test -p fleetview --no-default-features --features cli --test cli

## The server tests again on a private PostgreSQL (the other storage engine), and the ones that
## need it: two nodes on one database, PostgreSQL crashing under a node.
test-postgres:
	.ci/setup cluster
	.ci/with-postgres $(CARGO) test -p fleetview --all-features --test server_commands --test server_api \
		--test server_tcp --test server_crash --test server_http_guard --test server_nodes --test server_pg_crash \
		--test server_reports --test server_forward --test server_metrics --test server_openapi

## Forwarding to a real MQTT broker: Debian's mosquitto started privately (.ci/with-mosquitto),
## a mosquitto_sub subscriber with QoS 1. (The webhook tests run in test-core and test-postgres.)
test-forward:
	.ci/setup forward
	.ci/with-mosquitto $(CARGO) test -p fleetview --all-features --test server_mqtt

## Two nodes on a private PostgreSQL behind HAProxy, 500 simulated devices: a node killed with
## SIGKILL, a command across nodes, PostgreSQL stopped -m immediate; every acked record stored once.
test-cluster:
	.ci/setup cluster
	python3 core/tests/cluster/cluster_test.py

## The OpenAPI document against the server: schemathesis (PyPI, in its own virtual environment)
## sends generated requests to a running fleetview serve with data and checks every answer.
test-openapi:
	.ci/setup openapi
	$(CARGO) build -p fleetview --all-features --bin fleetview
	python3 core/tests/openapi/schemathesis_test.py

fuzz-smoke:
	.ci/fuzz-smoke

## Decoding speed against nom-teltonika 0.3 (criterion; prints a table of medians and ratios).
## Not part of `make test`: a few minutes, and figures only mean something on a quiet machine.
bench:
	$(CARGO) bench -p fleetview --bench decode

## Trips, stops and events of a month of one device's records (259,200) through the HTTP API
## of a release build, on SQLite then PostgreSQL: p50 and p99 of each request. Not in `make test`.
bench-reports:
	.ci/setup cluster
	$(CARGO) bench -p fleetview --features server --bench reports
	.ci/with-postgres $(CARGO) bench -p fleetview --features server --bench reports

## `fleetview pcap` on a generated ~100 MB capture of many device sessions: prints the time,
## the throughput and the peak memory (on demand, like `bench`).
bench-pcap:
	$(CARGO) bench -p fleetview --features cli --bench pcap

test-www:
	npm --prefix www run ci-test

test-worker:
	npm --prefix worker run ci-test

test-web:
	npm --prefix web run ci-test

## Load test, on demand (not in CI): the simulator against fleetview serve, 10,000 TCP devices.
loadtest:
	python3 core/loadtest/loadtest.py $(LOADTEST_ARGS)
