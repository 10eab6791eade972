#!/usr/bin/env bash
# Mutation testing of the safety-critical code with cargo-mutants
# (https://mutants.rs). The files in scope and the equivalent mutants left
# out (each with its reason) are in .cargo/mutants.toml.
#
#   scripts/mutants.sh                  the full scoped run, crate by crate
#   scripts/mutants.sh --crate ecs-rollout [--crate …]   some crates only
#   scripts/mutants.sh --in-diff [BASE] only the mutants in lines changed
#                                       since BASE (default HEAD~1); what CI runs
#   scripts/mutants.sh --list           list the mutants, build nothing
#   scripts/mutants.sh … -- ARGS        ARGS go to cargo mutants (e.g. --file F)
#
# Each crate's mutants are tested by that crate's unit and integration tests
# (no doctests), with the features its in-memory conformance suites need and
# without `aws` (no moto): none of the files in scope is AWS wiring.
# Reports land in target/mutants/<crate>/mutants.out (outcomes.json,
# missed.txt, caught.txt, timeout.txt, unviable.txt).
#
# CI budget: --in-diff runs at most $MUTANTS_CI_MAX mutants (default 40); a
# larger diff runs one deterministic shard of it (rotating with the commit),
# and says so. Exit status: 0 when no mutant was missed or timed out, else
# cargo-mutants' own (2 missed, 3 timeouts, 4 baseline failed).
set -euo pipefail
cd "$(dirname "$0")/.."

MUTANTS_VERSION=27.1.0
if ! cargo mutants --version 2>/dev/null | grep -q "$MUTANTS_VERSION"; then
    echo "==> installing cargo-mutants $MUTANTS_VERSION from crates.io"
    cargo install cargo-mutants --version "$MUTANTS_VERSION" --locked --quiet
fi

# crate -> features its fast tests need (the in-memory conformance suites).
declare -A FEATURES=(
    [ecs-rollout]="conformance"
    [update-policy]=""
    [update-lock]="conformance"
    [runner-version]="conformance"
    [runner-updater]=""
)
ORDER=(update-policy runner-version update-lock runner-updater ecs-rollout)

mode=full
base=HEAD~1
crates=()
extra=()
while (($#)); do
    case "$1" in
        --crate) crates+=("$2"); shift 2 ;;
        --in-diff)
            mode=diff; shift
            if (($#)) && [[ "$1" != --* ]]; then base="$1"; shift; fi ;;
        --list) mode=list; shift ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "scripts/mutants.sh: unknown argument '$1' (see --help)" >&2; exit 64 ;;
    esac
done
((${#crates[@]})) || crates=("${ORDER[@]}")

# The simulation campaign (crates/runner-updater/tests/campaign.rs) runs
# 10,000 seeds in CI; a per-mutant test needs far fewer to catch a mutant,
# and a mutant that stops cycles from finishing would otherwise only time out.
export CAMPAIGN_SEEDS="${CAMPAIGN_SEEDS:-300}"

run_crate() {
    local crate="$1"; shift
    local features="${FEATURES[$crate]-}"
    local args=(--package "$crate" --output "target/mutants/$crate" --jobs 1)
    [[ -n "$features" ]] && args+=(--features "$features")
    mkdir -p "target/mutants/$crate"
    echo "==> cargo mutants ${args[*]} $*"
    local start=$SECONDS status=0
    cargo mutants "${args[@]}" "$@" || status=$?
    echo "==> $crate: $((SECONDS - start)) s, exit $status"
    if [[ -f "target/mutants/$crate/mutants.out/outcomes.json" ]]; then
        python3 - "target/mutants/$crate/mutants.out/outcomes.json" <<'EOF'
import json, sys
o = json.load(open(sys.argv[1]))
keys = ["total_mutants", "caught", "missed", "timeout", "unviable", "success", "failure"]
print("    " + ", ".join(f"{k}={o.get(k)}" for k in keys if k in o))
EOF
        [[ -s "target/mutants/$crate/mutants.out/missed.txt" ]] \
            && sed 's/^/    missed: /' "target/mutants/$crate/mutants.out/missed.txt"
    fi
    return "$status"
}

overall=0
case "$mode" in
    list)
        cargo mutants --list ;;
    full)
        for crate in "${crates[@]}"; do
            run_crate "$crate" "${extra[@]}" || overall=$?
        done ;;
    diff)
        if ! git rev-parse --verify --quiet "$base^{commit}" >/dev/null; then
            echo "==> mutants: no base commit '$base' (shallow clone?): nothing to compare, skipped"
            exit 0
        fi
        patch="$(mktemp)"; trap 'rm -f "$patch"' EXIT
        git diff "$base" -- 'crates/*/src/**.rs' >"$patch"
        if [[ ! -s "$patch" ]]; then
            echo "==> mutants: no source change since $base"; exit 0
        fi
        max="${MUTANTS_CI_MAX:-40}"
        for crate in "${crates[@]}"; do
            count="$(cargo mutants --package "$crate" --in-diff "$patch" --list 2>/dev/null | grep -c . || true)"
            if ((count == 0)); then
                echo "==> mutants: $crate: no mutant in the lines changed since $base"; continue
            fi
            shard=()
            if ((count > max)); then
                n=$(((count + max - 1) / max))
                k=$(($(git rev-parse HEAD | cut -c1-7 | xargs -I{} printf '%d' 0x{}) % n))
                shard=(--shard "$k/$n")
                echo "==> mutants: $crate: $count mutants in the diff, over the CI budget of $max: shard $k/$n (the full run is scripts/mutants.sh --crate $crate)"
            else
                echo "==> mutants: $crate: $count mutants in the lines changed since $base"
            fi
            run_crate "$crate" --in-diff "$patch" "${shard[@]}" || overall=$?
        done ;;
esac
exit "$overall"
