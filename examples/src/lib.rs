//! Example binaries of the ECS self-updater crates, one per file in
//! `src/bin/`.

// The README's code blocks compile and run as doctests of this package.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
