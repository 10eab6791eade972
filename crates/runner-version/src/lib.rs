//! Release metadata for the ECS self-updater.
//!
//! - [`Version`]: calendar versions `YYYYMMDD.N` (the Gitpod runner's scheme,
//!   ordered numerically) and semver; comparing the two is an error.
//! - [`Channel`], [`InfraVersion`], [`ImageRef`] (a real OCI reference
//!   parser: registry with port, path, tag, digest), [`Release`].
#![warn(missing_docs)]

mod channel;
mod error;
mod image;
mod infra;
mod release;
mod version;

pub use channel::Channel;
pub use error::Error;
pub use image::ImageRef;
pub use infra::InfraVersion;
pub use release::Release;
pub use version::{CalendarVersion, Version, VersionScheme};
