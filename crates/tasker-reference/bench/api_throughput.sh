#!/bin/bash
# POST /v1/tasks throughput with 16 concurrent clients, unauthenticated and with an API key,
# beside pgbench -N -c 16 -j 2 -T 20, in one sitting (docs/benchmarks.md, "HTTP API").
# Needs a release build: cargo build --release -p tasker-reference; PostgreSQL on 127.0.0.1.
set -u
ROOT=$(git rev-parse --show-toplevel)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/tasker-reference
PG=postgres://postgres@127.0.0.1:5432
KEY=bench-0123456789abcdef0123456789abcdef
CONF=/tmp/api-bench-config
rm -rf $CONF; cp -r $ROOT/config/tasker $CONF
cat >> $CONF/environments/development/orchestration.toml <<TOML

[orchestration.web.auth]
enabled = true
api_keys_enabled = true

[[orchestration.web.auth.api_keys]]
key = "$KEY"
permissions = ["tasks:*", "templates:*"]
description = "bench"
TOML
psql -q $PG/postgres -c "DROP DATABASE IF EXISTS tasker_api_pgbench" -c "CREATE DATABASE tasker_api_pgbench"
pgbench -q -i -s 10 $PG/tasker_api_pgbench >/dev/null 2>&1
echo "pgbench before:"; pgbench -N -c 16 -j 2 -T 20 $PG/tasker_api_pgbench 2>/dev/null | grep -E "^tps"
run() { # $1 label, $2 extra env
  psql -q $PG/postgres -c "DROP DATABASE IF EXISTS tasker_api_bench" >/dev/null
  local out=/tmp/api-bench-$1.out
  (cd $ROOT && exec env TASKER_ENV=development DATABASE_URL=$PG/tasker_api_bench TASKER_LOG=warn $2 $BIN orchestrator > $out 2>/tmp/api-bench-$1.err) &
  local pid=$!
  for i in $(seq 1 300); do grep -q "orchestrator ready" $out 2>/dev/null && break; sleep 0.2; done
  local url=$(sed -n 's/^api listening on //p' $out)
  for t in $ROOT/crates/tasker-reference/templates/*.yaml; do
    curl -sS -o /dev/null -X POST "$url/v1/templates" -H "x-api-key: $KEY" -H 'content-type: application/yaml' --data-binary @$t
  done
  # Warm-up, then the measured run.
  (cd $ROOT && env TASKER_ENV=development TASKER_API_KEY=$KEY $2 $BIN submit --api http --api-url $url --tasks 500 --concurrency 16) | tail -1
  (cd $ROOT && env TASKER_ENV=development TASKER_API_KEY=$KEY $2 $BIN submit --api http --api-url $url --tasks 4000 --concurrency 16) | tail -1
  kill -INT $pid; wait $pid
}
echo "unauthenticated:"; run open ""
echo "API key:"; run key "TASKER_CONFIG_ROOT=$CONF"
echo "pgbench after:"; pgbench -N -c 16 -j 2 -T 20 $PG/tasker_api_pgbench 2>/dev/null | grep -E "^tps"
psql -q $PG/postgres -c "DROP DATABASE IF EXISTS tasker_api_bench" -c "DROP DATABASE IF EXISTS tasker_api_pgbench"
