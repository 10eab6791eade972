//! Criterion benchmarks of the ECS self-updater crates; run them with
//! `cargo bench -p updater-benches`. Each bench is a file under
//! `benches/benches/`; the library holds what more than a file needs:
//!
//! - [`fleet`]: a fleet of rollouts on one simulated ECS with ECS's token
//!   buckets on, driven on a discrete-event clock (`update_clock::ManualClock::run`).

pub mod fleet;
