#!/usr/bin/env python3
"""Builds TUF repositories with python-tuf (an independent TUF
implementation) for crates/runner-version/tests/tuf.rs.

Usage: make_tuf_repo.py OUT_DIR CURRENT_DOC OLDER_DOC

CURRENT_DOC and OLDER_DOC are release documents (the bytes the Rust test
wants served as the target `releases/stable.json`). Every scenario is a
directory OUT_DIR/<scenario>/ with `metadata/` and `targets/`, served as
the metadata and targets base URLs; OUT_DIR/1.root.json is the root the
client is shipped with (version 1, the same for every scenario).

Scenarios (one set of keys, generated here, shared by all):
- current:     root v1; targets, snapshot, timestamp v2; CURRENT_DOC.
- rolled-back: root v1; targets and snapshot v1 (OLDER_DOC), under a new,
               validly signed timestamp v3: a rollback of the snapshot.
- expired:     like current, but the timestamp expired on 2020-01-01.
- bad-hash:    like current, but the target file served differs from the
               hash and length in targets.json.
- rotated:     root v2 (signed by the v1 and the v2 root keys) replaces the
               root and the timestamp keys; everything else signed with the
               v2 keys, so only a client that follows the rotation accepts.

Consistent snapshots are on: metadata is fetched as N.<role>.json
(timestamp.json unversioned) and the target as
targets/releases/<sha256>.stable.json, as python-tuf's own client does, and
also as targets/<sha256>.releases/stable.json, where tough 0.24 looks.
Pinned: tuf==7.0.1 (scripts/test.sh installs it).
"""

from __future__ import annotations

import hashlib
import os
import sys
from datetime import datetime, timedelta, timezone

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

TARGET = "releases/stable.json"
FUTURE = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=365)
PAST = datetime(2020, 1, 1, tzinfo=timezone.utc)
SERIALIZER = JSONSerializer(compact=False)


def signer() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


KEYS = {
    "root": signer(),
    "targets": signer(),
    "snapshot": signer(),
    "timestamp": signer(),
    "root2": signer(),
    "timestamp2": signer(),
}


def root_v1() -> Metadata[Root]:
    root = Root(version=1, expires=FUTURE, consistent_snapshot=True)
    for role in ("root", "targets", "snapshot", "timestamp"):
        root.add_key(KEYS[role].public_key, role)
    return Metadata(root)


def root_v2() -> Metadata[Root]:
    md = root_v1()
    root = md.signed
    root.version = 2
    root.revoke_key(KEYS["root"].public_key.keyid, "root")
    root.add_key(KEYS["root2"].public_key, "root")
    root.revoke_key(KEYS["timestamp"].public_key.keyid, "timestamp")
    root.add_key(KEYS["timestamp2"].public_key, "timestamp")
    return md


def signed(md: Metadata, *keys: str) -> Metadata:
    for i, key in enumerate(keys):
        md.sign(KEYS[key], append=i > 0)
    return md


def write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def scenario(
    out: str,
    name: str,
    doc: bytes,
    *,
    version: int = 2,
    timestamp_version: int | None = None,
    timestamp_expires: datetime = FUTURE,
    served_doc: bytes | None = None,
    rotated: bool = False,
) -> None:
    base = os.path.join(out, name)
    meta = os.path.join(base, "metadata")
    write(os.path.join(meta, "1.root.json"), signed(root_v1(), "root").to_bytes(SERIALIZER))
    timestamp_key = "timestamp"
    if rotated:
        # Signed by the old and the new root keys: the client checks v2
        # against v1's root role and against its own.
        write(
            os.path.join(meta, "2.root.json"),
            signed(root_v2(), "root", "root2").to_bytes(SERIALIZER),
        )
        timestamp_key = "timestamp2"

    target_file = TargetFile.from_data(TARGET, doc, ["sha256"])
    targets = Targets(version=version, expires=FUTURE)
    targets.targets[TARGET] = target_file
    targets_bytes = signed(Metadata(targets), "targets").to_bytes(SERIALIZER)
    write(os.path.join(meta, f"{version}.targets.json"), targets_bytes)

    snapshot = Snapshot(version=version, expires=FUTURE)
    snapshot.meta["targets.json"] = MetaFile(version=version)
    snapshot_bytes = signed(Metadata(snapshot), "snapshot").to_bytes(SERIALIZER)
    write(os.path.join(meta, f"{version}.snapshot.json"), snapshot_bytes)

    timestamp = Timestamp(
        version=timestamp_version or version,
        expires=timestamp_expires,
        snapshot_meta=MetaFile(version=version),
    )
    write(
        os.path.join(meta, "timestamp.json"),
        signed(Metadata(timestamp), timestamp_key).to_bytes(SERIALIZER),
    )

    sha256 = hashlib.sha256(doc).hexdigest()
    name_dir, file_name = os.path.split(TARGET)
    served = doc if served_doc is None else served_doc
    # Where the TUF spec (and python-tuf's client) fetch a consistent
    # target: HASH.FILENAME inside the target's directory...
    write(os.path.join(base, "targets", name_dir, f"{sha256}.{file_name}"), served)
    # ...and where tough 0.24 fetches it: HASH. before the whole target
    # path. A publisher serving tough clients needs both.
    write(os.path.join(base, "targets", f"{sha256}.{TARGET}"), served)


def main() -> None:
    out, current_path, older_path = sys.argv[1:4]
    with open(current_path, "rb") as f:
        current = f.read()
    with open(older_path, "rb") as f:
        older = f.read()
    os.makedirs(out, exist_ok=True)
    write(os.path.join(out, "1.root.json"), signed(root_v1(), "root").to_bytes(SERIALIZER))
    scenario(out, "current", current)
    scenario(out, "rolled-back", older, version=1, timestamp_version=3)
    scenario(out, "expired", current, timestamp_expires=PAST)
    # Same length, other content: refused by its hash, not by its size.
    tampered = current.replace(b"20", b"21", 1)
    assert len(tampered) == len(current) and tampered != current
    scenario(out, "bad-hash", current, served_doc=tampered)
    scenario(out, "rotated", current, rotated=True)


if __name__ == "__main__":
    main()
