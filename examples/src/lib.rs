//! Example binaries of the ECS self-updater crates, one per file in
//! `src/bin/`.
