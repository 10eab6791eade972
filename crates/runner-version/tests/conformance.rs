//! Every `ReleaseSource` and `HighWaterMark` backend runs the conformance suite.

mod support;

use std::path::PathBuf;

use async_trait::async_trait;
use runner_version::{
    BearerToken, Channel, FileHighWaterMark, GitpodApiSource, MemoryHighWaterMark, Release,
    ReleaseSource, ReleaseVerifier, StaticSource,
    conformance::{self, Publisher},
};
use support::*;

/// Publishes into a memory `StaticSource` (shared with the source under test).
#[derive(Debug)]
struct MemoryPublisher(std::sync::Arc<StaticSource>);

#[async_trait]
impl Publisher for MemoryPublisher {
    async fn publish(&self, release: &Release) {
        self.0.publish(release.clone());
    }
}

/// Writes signed manifests into `<dir>/<channel>.json`.
#[derive(Debug)]
struct FilePublisher(PathBuf, #[allow(dead_code)] tempfile::TempDir);

#[async_trait]
impl Publisher for FilePublisher {
    async fn publish(&self, release: &Release) {
        let path = self.0.join(format!("{}.json", release.channel));
        std::fs::write(path, signed_bytes(release, &[("k1", 1)])).unwrap();
    }
}

type Backend = (Box<dyn ReleaseSource>, Box<dyn Publisher>);

async fn memory() -> Backend {
    let verifier = ReleaseVerifier::builder()
        .allow_unsigned()
        .clock(clock())
        .build()
        .unwrap();
    let source = std::sync::Arc::new(StaticSource::new(verifier));
    (Box::new(source.clone()), Box::new(MemoryPublisher(source)))
}

async fn file() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let source = StaticSource::new(signed_verifier(clock()))
        .with_manifest_file(Channel::Stable, root.join("stable.json"))
        .with_manifest_file(Channel::Latest, root.join("latest.json"));
    (Box::new(source), Box::new(FilePublisher(root, dir)))
}

async fn http() -> Backend {
    let server = ManifestServer::start().await;
    let source = http_source(&server, signed_verifier(clock()));
    (Box::new(source), Box::new(HttpPublisher(server)))
}

async fn gitpod_api() -> Backend {
    let api = FakeGitpodApi::start().await;
    let source = GitpodApiSource::builder()
        .base_url(api.base_url())
        .token(BearerToken::new(GOOD_TOKEN))
        .runner_id("runner-1")
        .release_method(RELEASE_METHOD)
        .config(loopback_config())
        .verifier(signed_verifier(clock()))
        .build()
        .unwrap();
    (Box::new(source), Box::new(ApiPublisher(api)))
}

macro_rules! source_suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn latest_returns_the_published_release() {
                let (s, p) = super::$backend().await;
                conformance::latest_returns_the_published_release(&*s, &*p).await;
            }

            #[tokio::test]
            async fn repeated_checks_return_the_same_release() {
                let (s, p) = super::$backend().await;
                conformance::repeated_checks_return_the_same_release(&*s, &*p).await;
            }

            #[tokio::test]
            async fn newer_release_replaces_older() {
                let (s, p) = super::$backend().await;
                conformance::newer_release_replaces_older(&*s, &*p).await;
            }

            #[tokio::test]
            async fn downgrade_is_refused() {
                let (s, p) = super::$backend().await;
                conformance::downgrade_is_refused(&*s, &*p).await;
            }

            #[tokio::test]
            async fn expired_release_is_refused() {
                let (s, p) = super::$backend().await;
                conformance::expired_release_is_refused(&*s, &*p).await;
            }

            #[tokio::test]
            async fn channels_are_independent() {
                let (s, p) = super::$backend().await;
                conformance::channels_are_independent(&*s, &*p).await;
            }

            #[tokio::test]
            async fn unpublished_channel_is_reported() {
                let (s, _p) = super::$backend().await;
                conformance::unpublished_channel_is_reported(
                    &*s,
                    &Channel::Custom("nightly".into()),
                )
                .await;
            }
        }
    };
}

source_suite!(memory);
source_suite!(file);
source_suite!(http);
source_suite!(gitpod_api);

#[tokio::test]
async fn memory_high_water_mark_conforms() {
    conformance::high_water_mark_only_rises(&MemoryHighWaterMark::new()).await;
    conformance::high_water_mark_keeps_channels_apart(&MemoryHighWaterMark::new()).await;
}

#[tokio::test]
async fn file_high_water_mark_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance::high_water_mark_only_rises(&FileHighWaterMark::new(dir.path().join("a.json")))
        .await;
    conformance::high_water_mark_keeps_channels_apart(&FileHighWaterMark::new(
        dir.path().join("b.json"),
    ))
    .await;
}
