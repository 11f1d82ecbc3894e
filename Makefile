# cutover — the two commands: `make demo` and `make test`. Nothing else to set up: both
# start their own throwaway PostgreSQL from the installed server binaries.

CARGO ?= cargo
FIXTURE := target/fixtures/podium.sqlite

.PHONY: demo test test-faults lint bench fixture build pg-binaries

# PostgreSQL's server binaries (initdb, postgres) must be installed; no server needs to run.
pg-binaries:
	@if ! { test -x "$$(pg_config --bindir 2>/dev/null)/initdb" || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; }; then \
		echo "PostgreSQL server binaries (initdb, postgres) not found."; \
		echo "Install Debian's package:  apt-get install postgresql   (no server needs to run)"; \
		exit 1; \
	fi

# The shipped binary plus the fixture generator and the benchmark (workspace members).
build:
	$(CARGO) build --release --workspace

# The legacy Podium SQLite database, built from its readable text source.
fixture: build
	./target/release/cutover-fixture sql fixtures/podium/legacy.sql $(FIXTURE)

# A real backfill of the Podium fixture into a throwaway PostgreSQL: check, load, verify.
demo: pg-binaries fixture
	./target/release/cutover check -m mappings/podium-sqlite.toml --target scratch --schema fixtures/podium/schema.sql
	./target/release/cutover load -m mappings/podium-sqlite.toml --target scratch --schema fixtures/podium/schema.sql \
		--report target/podium-report.json --rejects target/podium-rejects.csv
	@echo "report: target/podium-report.json   rejects and skipped rows: target/podium-rejects.csv"

# Unit tests, and integration tests against a real PostgreSQL the harness starts itself.
test: pg-binaries
	$(CARGO) test --workspace

# Fault injection (tests/faults): cutover killed, interrupted, cut off from its server, timed
# out and raced; a misbehaving Airtable API; a full disk under export. Needs root (it mounts a
# tiny tmpfs). Not part of `cargo test` ([[test]] faults has test = false), so it is linted here.
test-faults: pg-binaries
	$(CARGO) clippy --test faults -- -D warnings
	$(CARGO) test --test faults

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# cutover vs pgloader, DuckDB and the COPY floor on generated Podium data, re-runs, scale 0.1
# to 10 (release build, one throwaway cluster). BENCH_ARGS e.g. "--quick" (no scale 10) or
# "--scale 0.1 --skip-pgloader --skip-duckdb"; results in target/bench/.
BENCH_ARGS ?=
bench: pg-binaries build
	./target/release/cutover-bench $(BENCH_ARGS)
