#!/usr/bin/env bash
# Side by side (issue 13): fabfuel's ecs-deploy, `runner-updater update` and
# `aws ecs wait services-stable` against the same moto ECS, for the same
# deployment: a good image, and a bad image that ECS's circuit breaker rolls
# back. Records each tool's verdict (exit code and message), wall time to
# verdict, the AWS API calls it made (by operation) and its peak RSS, and
# writes a Markdown table. benches/README.md explains the set-up, what is
# simulated and the results.
#
# Run by hand (not part of CI: it needs PyPI and a few minutes):
#
#   benches/side-by-side/run.sh
#
# Environment:
#   SBS_OUT             output directory (default: target/side-by-side)
#   SBS_RUNNER_UPDATER  a runner-updater binary built with `--features aws`
#                       (default: build the release binary with cargo)
#   SBS_TOOLS           tools to run (default: all four, see harness.py)
#   SBS_SCENARIOS       scenarios to run (default: "good bad")
#   SBS_REPEAT          runs of each (default: 3; the table shows the median)
#   SBS_ECS_STEP_SECS   the simulated ECS's step: seconds from a deployment to
#                       its completion or to the breaker's rollback (default 6.5)
#
# Network: PyPI for the pinned installs (ecs-deploy and awscli in venvs
# under SBS_OUT; moto[server] into python3 when missing, as
# scripts/test.sh does). Every AWS request goes to moto on 127.0.0.1.
set -euo pipefail

ECS_DEPLOY_VERSION=1.17.0
AWSCLI_VERSION=1.46.3
MOTO_VERSION=5.2.1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${SBS_OUT:-$repo/target/side-by-side}
tools=${SBS_TOOLS:-ecs-deploy runner-updater runner-updater-1s aws-wait}
scenarios=${SBS_SCENARIOS:-good bad}
repeat=${SBS_REPEAT:-3}
step=${SBS_ECS_STEP_SECS:-6.5}
mkdir -p "$out"

say() { printf '==> %s\n' "$*" >&2; }

# moto, pinned: the ECS plugin edits moto's in-process backends.
if ! python3 -c "import moto, moto.server, werkzeug, boto3, cryptography; assert moto.__version__ == '$MOTO_VERSION'" >/dev/null 2>&1; then
    say "installing moto[server]==$MOTO_VERSION from PyPI"
    python3 -m pip install --quiet "moto[server]==$MOTO_VERSION"
fi

# GNU time for the peak RSS ("Maximum resident set size").
if [ ! -x /usr/bin/time ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing Debian's time package"
        apt-get install -y -qq time >/dev/null
    else
        echo "/usr/bin/time (GNU time) is missing: apt-get install time" >&2
        exit 1
    fi
fi

# The peers, pinned, each in its own venv (awscli pins its own botocore).
venv() { # venv NAME PACKAGE==VERSION
    local dir="$out/venv-$1"
    if [ ! -x "$dir/bin/python" ]; then
        python3 -m venv "$dir"
    fi
    local shown
    shown=$("$dir/bin/python" -m pip show "${2%%==*}" 2>/dev/null || true)
    if ! grep -qx "Version: ${2##*==}" <<<"$shown"; then
        say "installing $2 into $dir"
        "$dir/bin/python" -m pip install --quiet "$2"
    fi
}
venv ecs-deploy "ecs-deploy==$ECS_DEPLOY_VERSION"
venv awscli "awscli==$AWSCLI_VERSION"

# Our binary: the release build, unless one is given.
binary=${SBS_RUNNER_UPDATER:-}
if [ -z "$binary" ]; then
    say "building runner-updater (release, --features aws)"
    (cd "$repo" && cargo build --release --quiet -p updater-examples --features aws --bin runner-updater)
    binary=$repo/target/release/runner-updater
fi
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")

# The machine and the versions, for the README.
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc)"
    echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB total, " $7 " GiB available"}')"
    echo "kernel: $(uname -r)"
    echo "rustc: $(rustc --version)"
    echo "python: $(python3 --version)"
    echo "moto: $(python3 -c 'import moto; print(moto.__version__)')"
    echo "ecs-deploy: $("$out/venv-ecs-deploy/bin/python" -m pip show ecs-deploy | sed -n 's/^Version: //p')"
    echo "awscli: $("$out/venv-awscli/bin/aws" --version 2>&1)"
    echo "runner-updater: $("$binary" --version) ($binary)"
    echo "simulated ECS step: $step s"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/machine.txt" >&2

rm -rf "$out/results" "$out/runs"
mkdir -p "$out/results"
for i in $(seq "$repeat"); do
    for tool in $tools; do
        for scenario in $scenarios; do
            say "run $i/$repeat: $tool, $scenario image"
            python3 "$here/harness.py" run --tool "$tool" --scenario "$scenario" \
                --out "$out/results/$tool-$scenario-$i.json" --workdir "$out/runs/$tool-$scenario-$i" \
                --ecs "$out/venv-ecs-deploy/bin/ecs" --aws "$out/venv-awscli/bin/aws" \
                --runner-updater "$binary" --ecs-step "$step"
        done
    done
done

python3 "$here/harness.py" table "$out"/results/*.json | tee "$out/table.md"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt" >&2
say "table: $out/table.md; each run's output: $out/runs/<tool>-<scenario>-<n>/"
