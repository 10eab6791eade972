#!/usr/bin/env bash
# The one command that runs the whole test suite on a fresh machine:
# installs what is missing (moto[server] from PyPI for the AWS wiring tests),
# then runs every unit, integration, conformance and doc test of every crate
# with every feature, builds the example binaries, and runs each criterion
# bench once in test mode (so a broken bench fails here, cheaply).
#
# Network use: PyPI for moto when missing; every test talks only to
# 127.0.0.1 (moto and the tests' own HTTP servers).
set -euo pipefail
cd "$(dirname "$0")/.."

# The ECS test plugin (crates/ecs-rollout/tests/moto_ecs_plugin.py) edits
# moto's in-process backends, so the version is pinned.
MOTO_VERSION=5.2.1
if ! python3 -c "import moto, moto.server, flask, werkzeug; assert moto.__version__ == '$MOTO_VERSION'" >/dev/null 2>&1; then
    echo "==> installing moto[server]==$MOTO_VERSION from PyPI"
    python3 -m pip install --quiet "moto[server]==$MOTO_VERSION"
fi

# crates/runner-version/tests/tuf.rs builds its TUF repositories with
# python-tuf (an independent implementation), pinned.
TUF_VERSION=7.0.1
if ! python3 -c "import tuf, securesystemslib, cryptography; assert tuf.__version__ == '$TUF_VERSION'" >/dev/null 2>&1; then
    echo "==> installing tuf==$TUF_VERSION from PyPI"
    python3 -m pip install --quiet "tuf==$TUF_VERSION" "securesystemslib[crypto]"
fi

echo "==> cargo test (all crates, all features, incl. doctests, examples and benches in test mode)"
cargo test --workspace --all-features --lib --bins --tests --examples --benches
cargo test --workspace --all-features --doc

echo "==> cargo test of the pure builds (update-clock and runner-version without their default features)"
cargo test -p update-clock --no-default-features --lib
cargo test -p runner-version --no-default-features --lib
