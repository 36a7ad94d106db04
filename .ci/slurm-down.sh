#!/usr/bin/env bash
# Stops the single-node Slurm cluster of .ci/slurm-up.sh by the pid files it wrote (slurmd,
# slurmctld, munged), waiting up to 10 s for each to exit.
set -uo pipefail
STATE="${XS_SLURM_STATE:-/tmp/xscore-slurm}"
for name in slurmd slurmctld munged; do
  f="$STATE/$name.pid"
  [ -s "$f" ] || continue
  pid=$(cat "$f")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && echo "slurm-down: $name (pid $pid) still running" >&2
  fi
  rm -f "$f"
done
echo "slurm-down: stopped"
