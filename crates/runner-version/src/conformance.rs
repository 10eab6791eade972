//! The behaviour suite every [`ReleaseSource`] and [`HighWaterMark`]
//! backend runs (feature `conformance`).
//!
//! One `pub async fn` per behaviour; each panics with a message naming the
//! broken rule. A [`ReleaseSource`] test supplies a [`Publisher`] that puts a
//! release where its source reads it (memory, a file, a test HTTP server)
//! and a source whose verifier uses a fresh high-water mark and a clock set
//! to [`CONFORMANCE_NOW`].

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::{
    Channel, Error, HighWaterAdvance, HighWaterMark, ImageRef, Release, ReleaseSource, Version,
};

/// The instant the suite assumes the source's clock reads
/// (2025-01-01T00:00:00Z).
pub const CONFORMANCE_NOW: DateTime<Utc> = DateTime::from_timestamp(1_735_689_600, 0).unwrap();

/// Puts a release where a source under test reads it (signing it when the
/// source requires signatures).
#[async_trait]
pub trait Publisher: Send + Sync + Debug {
    /// Publishes `release` on `release.channel`, replacing what was there.
    async fn publish(&self, release: &Release);
}

/// A valid release on `channel`: image pinned by a digest derived from the
/// version, expiring 30 days after [`CONFORMANCE_NOW`].
pub fn sample_release(version: &str, channel: Channel) -> Release {
    let hex: String = format!("{:0>64}", version.replace(['.', '-', '+'], ""))
        .chars()
        .map(|c| if c.is_ascii_hexdigit() { c } else { 'f' })
        .collect();
    let hex = &hex[hex.len() - 64..];
    Release {
        version: Version::parse(version).expect("a valid version"),
        channel,
        image: ImageRef::parse(&format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/runner:{}@sha256:{hex}",
            version.replace('+', "_")
        ))
        .expect("a valid image"),
        proxy_image: None,
        infra_version: Some("infra-1".into()),
        template_url: "https://templates.example.com/runner.json".into(),
        template_sha256: Some("cd".repeat(32)),
        released_at: Some(CONFORMANCE_NOW - Duration::days(1)),
        expires: Some(CONFORMANCE_NOW + Duration::days(30)),
        waves: Default::default(),
    }
}

/// The published release comes back, equal field for field.
pub async fn latest_returns_the_published_release(
    source: &dyn ReleaseSource,
    publisher: &dyn Publisher,
) {
    let release = sample_release("20250101.1", Channel::Stable);
    publisher.publish(&release).await;
    let got = source
        .latest(&Channel::Stable)
        .await
        .unwrap_or_else(|e| panic!("{source:?}: latest failed: {e}"));
    assert_eq!(got, release, "{source:?}: returned a different release");
    assert!(
        got.validate().is_ok(),
        "{source:?}: returned an invalid release"
    );
}

/// Two checks without a new publication return the same release (and the
/// second is not refused as a rollback).
pub async fn repeated_checks_return_the_same_release(
    source: &dyn ReleaseSource,
    publisher: &dyn Publisher,
) {
    let release = sample_release("20250101.2", Channel::Stable);
    publisher.publish(&release).await;
    let first = source.check(&Channel::Stable).await.expect("first check");
    let second = source.check(&Channel::Stable).await.expect("second check");
    assert_eq!(first.release(), &release, "{source:?}");
    assert_eq!(second.release(), &release, "{source:?}");
}

/// A newer publication replaces the older one.
pub async fn newer_release_replaces_older(source: &dyn ReleaseSource, publisher: &dyn Publisher) {
    publisher
        .publish(&sample_release("20250101.3", Channel::Stable))
        .await;
    source.latest(&Channel::Stable).await.expect("older");
    let newer = sample_release("20250101.10", Channel::Stable);
    publisher.publish(&newer).await;
    assert_eq!(
        source.latest(&Channel::Stable).await.expect("newer"),
        newer,
        "{source:?}: 20250101.10 must replace 20250101.3 (numeric order)"
    );
}

/// After a version was accepted, a lower one is [`Error::Rollback`], and
/// the source does not fall back to anything else.
pub async fn downgrade_is_refused(source: &dyn ReleaseSource, publisher: &dyn Publisher) {
    publisher
        .publish(&sample_release("20250102.5", Channel::Stable))
        .await;
    source.latest(&Channel::Stable).await.expect("higher");
    publisher
        .publish(&sample_release("20250102.4", Channel::Stable))
        .await;
    for _ in 0..2 {
        match source.latest(&Channel::Stable).await {
            Err(Error::Rollback {
                offered,
                highest_accepted,
                ..
            }) => {
                assert_eq!(offered, "20250102.4");
                assert_eq!(highest_accepted, "20250102.5");
            }
            other => panic!("{source:?}: a downgrade must be Error::Rollback, got {other:?}"),
        }
    }
}

/// A release whose `expires` lies before the source's clock is
/// [`Error::Expired`].
pub async fn expired_release_is_refused(source: &dyn ReleaseSource, publisher: &dyn Publisher) {
    let mut release = sample_release("20250103.1", Channel::Stable);
    release.expires = Some(CONFORMANCE_NOW - Duration::seconds(1));
    publisher.publish(&release).await;
    match source.latest(&Channel::Stable).await {
        Err(Error::Expired { expired_at, .. }) => assert_eq!(Some(expired_at), release.expires),
        other => panic!("{source:?}: an expired release must be Error::Expired, got {other:?}"),
    }
}

/// Channels are independent: a release on `latest` is not served on
/// `stable` and vice versa, and each keeps its own high-water mark.
pub async fn channels_are_independent(source: &dyn ReleaseSource, publisher: &dyn Publisher) {
    let stable = sample_release("20250104.2", Channel::Stable);
    let latest = sample_release("20250104.1", Channel::Latest);
    publisher.publish(&stable).await;
    publisher.publish(&latest).await;
    assert_eq!(
        source.latest(&Channel::Stable).await.expect("stable"),
        stable
    );
    assert_eq!(
        source.latest(&Channel::Latest).await.expect("latest"),
        latest,
        "{source:?}: a lower version on another channel is not a rollback"
    );
}

/// A channel the source does not publish is [`Error::ChannelNotPublished`].
pub async fn unpublished_channel_is_reported(source: &dyn ReleaseSource, channel: &Channel) {
    match source.latest(channel).await {
        Err(Error::ChannelNotPublished { channel: c, .. }) => assert_eq!(c, channel.to_string()),
        other => panic!("{source:?}: expected ChannelNotPublished for {channel}, got {other:?}"),
    }
}

/// A high-water mark only rises; an equal version is unchanged; a lower one
/// is [`Error::Rollback`] and leaves the mark alone.
pub async fn high_water_mark_only_rises(store: &dyn HighWaterMark) {
    let stable = Channel::Stable;
    let v = |s: &str| Version::parse(s).expect("valid");
    assert_eq!(store.highest(&stable).await.expect("read"), None);
    assert_eq!(
        store
            .advance(&stable, &v("20250101.9"))
            .await
            .expect("first"),
        HighWaterAdvance::Raised { previous: None }
    );
    assert_eq!(
        store
            .advance(&stable, &v("20250101.10"))
            .await
            .expect("raise"),
        HighWaterAdvance::Raised {
            previous: Some(v("20250101.9"))
        }
    );
    assert_eq!(
        store
            .advance(&stable, &v("20250101.10"))
            .await
            .expect("same"),
        HighWaterAdvance::Unchanged
    );
    assert!(matches!(
        store.advance(&stable, &v("20250101.9")).await,
        Err(Error::Rollback { .. })
    ));
    assert_eq!(
        store.highest(&stable).await.expect("read"),
        Some(v("20250101.10"))
    );
}

/// Marks of different channels do not interfere.
pub async fn high_water_mark_keeps_channels_apart(store: &dyn HighWaterMark) {
    let v = |s: &str| Version::parse(s).expect("valid");
    store
        .advance(&Channel::Latest, &v("2.0.0"))
        .await
        .expect("latest");
    store
        .advance(&Channel::Custom("canary".into()), &v("1.0.0"))
        .await
        .expect("a lower version on another channel is not a rollback");
    assert_eq!(
        store.highest(&Channel::Latest).await.expect("read"),
        Some(v("2.0.0"))
    );
}
