#!/usr/bin/env bash
# Resident memory of the updater's idle loop after an hour (and a day) of
# simulated idle checks, release build.
#
# What it measures: `runner_updater::Updater::run_once` with nothing to do,
# one check every 60 s of simulated time (a ManualClock moved by the
# bench), against `HttpManifestSource` on a local server answering 304 and
# the simulated ECS; the process's peak RSS (VmHWM) read from
# /proc/self/status, and /usr/bin/time -v's maximum resident set size.
#
# What it does not measure: the `runner-updater run` binary itself (the AWS
# SDK clients, the metrics exporter, the HTTP listener). That is
# `python3 benches/side-by-side/harness.py idle` (the daemon against moto,
# one check a second, its RSS sampled from /proc): see benches/README.md,
# "Idle memory of `runner-updater run`".
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p updater-benches --bench idle --no-run 2>&1 | tail -n 1
bin=$(ls -t target/release/deps/idle-* | grep -v '\.d$' | head -n 1)
for checks in 60 1440; do
    /usr/bin/time -v "$bin" --rss-checks "$checks" 2>/tmp/idle-rss-time.txt
    grep -E "Maximum resident set size|Elapsed" /tmp/idle-rss-time.txt
done
