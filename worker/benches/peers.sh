#!/usr/bin/env bash
# Refrain against its peers, back to back in one session on this machine:
# Refrain's `seq` and `c20` (worker/benches/engine.rs) and the peer benchmarks
# of shared/bench/peers (DBOS-Rust on a local PostgreSQL, DBOS-Python on
# SQLite, duroxide on SQLite), same workload: 1,000 workflows x 3 no-op
# steps, 20 warm-up, fresh database per repetition, medians of REPS.
# Prints each engine's medians and the ratios Refrain / peer.
#
# Usage: worker/benches/peers.sh [REPS=3]
#   env PEERS=DIR        peer folder (default: <repo>/../shared/bench/peers)
#   env DURABILITY=MODE  Refrain's durability mode (default fsync)
#   env KEEP=1           keep the scratch folder
# Needs: root (apt-get, and pg_local.sh runs PostgreSQL as the postgres
# user), network for crates.io / PyPI, python3 with venv.
# Everything is built in a scratch copy of the peer folder (build outputs
# stay out of every repository); PostgreSQL is stopped and the scratch
# folder removed on exit.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/bench/peers}
REPS=${1:-3}
N=1000
CONC=20
MODE=${DURABILITY:-fsync}
PG_URL=postgresql://postgres@127.0.0.1:54329/postgres

S=$(mktemp -d /tmp/refrain-peers.XXXXXX)
chmod 755 "$S" # the postgres user must reach $S/pgdata
PG_STARTED=
cleanup() {
  if [ -n "$PG_STARTED" ]; then "$S/pg_local.sh" stop "$S/pgdata" >/dev/null 2>&1 || true; fi
  if [ -z "${KEEP:-}" ]; then rm -rf "$S"; else echo "scratch kept: $S"; fi
}
trap cleanup EXIT
cp -r "$PEERS/." "$S/"
chmod +x "$S"/*.sh
log() { echo "[peers $(date +%T)] $*" >&2; }

# ---- install and build everything first, so no build competes with a run
if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  log "installing postgresql"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
log "building Refrain's engine bench"
(cd "$ROOT" && cargo bench -q -p refrain-worker --bench engine --no-run 2>&1 | grep -v '^\s*Executable' >&2 || true)
log "building dbosrsbench (dbos 0.5.0)"
(cd "$S/dbosrsbench" && cargo build -q --release)
log "building duroxbench (duroxide 0.1.32)"
(cd "$S/duroxbench" && cargo build -q --release)
log "creating a venv with dbos"
python3 -m venv "$S/venv"
"$S/venv/bin/pip" install -q dbos
log "starting PostgreSQL"
"$S/pg_local.sh" start "$S/pgdata" >&2
PG_STARTED=1

# ---- run, back to back
log "Refrain seq + c20 ($MODE)"
(cd "$ROOT" && cargo bench -q -p refrain-worker --bench engine -- seq c20 --reps "$REPS" \
  --durability "$MODE" --json "$S/refrain.json") | tee "$S/refrain.txt"
log "DBOS-Rust on PostgreSQL"
"$S/dbosrsbench/target/release/dbosrsbench" "$N" "$CONC" "$REPS" "$PG_URL" | tee "$S/dbosrs.txt"
log "DBOS-Python on SQLite"
"$S/venv/bin/python" "$S/dbos_bench.py" --db sqlite --reps "$REPS" --n "$N" --conc "$CONC" | tee "$S/dbospy.txt"
log "duroxide on SQLite"
mkdir -p "$S/durox"
"$S/duroxbench/target/release/duroxbench" "$N" "$CONC" "$REPS" poll1 "$S/durox" \
  | grep -E '^(duroxide|rep|MEDIAN)' | tee "$S/durox.txt"

# ---- side by side
python3 - "$S" "$MODE" <<'EOF'
import json, sys
s, mode = sys.argv[1], sys.argv[2]
def median_line(path):
    line = [l for l in open(path) if l.startswith("MEDIAN ")][-1]
    return {k: float(v) for k, v in (kv.split("=") for kv in line[7:].strip().split(", "))}
r = json.load(open(f"{s}/refrain.json"))["workloads"]
rows = [("Refrain (sled)", f"{mode}, group commit", {
    "seq_wf_per_s": r["seq"]["median"]["wf_per_s"], "seq_wf_p50_ms": r["seq"]["median"]["wf_p50_ms"],
    "step_p50_ms": r["seq"]["median"]["step_p50_ms"],
    "conc_wf_per_s": r["c20"]["median"]["wf_per_s"], "conc_wf_p50_ms": r["c20"]["median"]["wf_p50_ms"]})]
rows.append(("DBOS-Rust 0.5.0 (PostgreSQL)", "PG defaults: WAL fsync per commit", median_line(f"{s}/dbosrs.txt")))
rows.append(("DBOS-Python (SQLite)", "SQLite defaults", median_line(f"{s}/dbospy.txt")))
rows.append(("duroxide 0.1.32 (SQLite)", "no fsync per commit", median_line(f"{s}/durox.txt")))
print()
print("Medians, 1,000 workflows x 3 no-op steps, same session:")
hdr = f"{'engine':30} {'durability':34} {'seq wf/s':>9} {'seq p50':>9} {'step p50':>9} {'c20 wf/s':>9} {'c20 p50':>9}"
print(hdr); print("-" * len(hdr))
for name, dur, m in rows:
    print(f"{name:30} {dur:34} {m['seq_wf_per_s']:9.1f} {m['seq_wf_p50_ms']:7.2f}ms {m['step_p50_ms']:7.3f}ms"
          f" {m['conc_wf_per_s']:9.1f} {m['conc_wf_p50_ms']:7.2f}ms")
ref = rows[0][2]
print()
print("Ratios (>1 = Refrain better): throughput = Refrain wf/s / peer wf/s; latency = peer p50 / Refrain p50")
hdr = f"{'Refrain vs':30} {'seq wf/s':>9} {'seq p50':>9} {'c20 wf/s':>9} {'c20 p50':>9}"
print(hdr); print("-" * len(hdr))
for name, _, m in rows[1:]:
    print(f"{name:30} {ref['seq_wf_per_s']/m['seq_wf_per_s']:8.2f}x {m['seq_wf_p50_ms']/ref['seq_wf_p50_ms']:8.2f}x"
          f" {ref['conc_wf_per_s']/m['conc_wf_per_s']:8.2f}x {m['conc_wf_p50_ms']/ref['conc_wf_p50_ms']:8.2f}x")
EOF
