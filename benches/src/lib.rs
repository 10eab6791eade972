//! Criterion benchmarks of the ECS self-updater crates; run them with
//! `cargo bench -p updater-benches`. The library part is empty: each bench
//! is a file under `benches/benches/`.
