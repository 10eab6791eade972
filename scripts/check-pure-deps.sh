#!/usr/bin/env bash
# The policy crate and runner-version without its `http`/`fs` features are
# pure domain code: no async runtime, no HTTP or TLS stack, no AWS SDK.
# Fails, listing the offenders, if one of those crates is in their normal
# dependency tree.
set -euo pipefail
cd "$(dirname "$0")/.."

# Crate names that must not appear (an extended regex over the whole name).
forbidden='^(tokio|tokio-.*|reqwest|hyper|hyper-.*|rustls.*|aws-.*|ring|aws-lc.*)$'

status=0
check() {
    local what="$1"
    shift
    local tree
    if ! tree=$(cargo tree "$@" -e normal --prefix none 2>&1); then
        echo "check-pure-deps: cargo tree $* failed:" >&2
        echo "$tree" >&2
        exit 2
    fi
    local offenders
    offenders=$(printf '%s\n' "$tree" | awk '{print $1}' | grep -E "$forbidden" | sort -u || true)
    if [ -n "$offenders" ]; then
        echo "check-pure-deps: $what depends on crates it must not use:" >&2
        printf '  %s\n' $offenders >&2
        echo "  (see 'cargo tree $* -e normal -i <crate>' for the path)" >&2
        status=1
    else
        echo "check-pure-deps: $what is pure ($(printf '%s\n' "$tree" | awk '{print $1}' | sort -u | wc -l) crates)"
    fi
}

check "update-policy" -p update-policy
check "runner-version --no-default-features" -p runner-version --no-default-features
exit "$status"
