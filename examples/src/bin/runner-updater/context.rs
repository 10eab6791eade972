//! What every command gets: the settings, the output format, the clock and
//! (with the `aws` feature) the AWS SDK configuration, loaded once on first
//! use through aws-config's standard chain.

use std::sync::Arc;

use update_clock::{Clock, SystemClock};

use crate::{cli::OutputFormat, config::Settings};

/// The command context.
#[derive(Debug)]
pub struct Ctx {
    /// The validated configuration.
    pub settings: Settings,
    /// How to print.
    pub format: OutputFormat,
    /// The wall and monotonic clock.
    pub clock: Arc<dyn Clock>,
    #[cfg(feature = "aws")]
    sdk: tokio::sync::OnceCell<aws_config::SdkConfig>,
}

impl Ctx {
    /// A context on the system clock.
    pub fn new(settings: Settings, format: OutputFormat) -> Self {
        Self {
            settings,
            format,
            clock: Arc::new(SystemClock::new()),
            #[cfg(feature = "aws")]
            sdk: tokio::sync::OnceCell::new(),
        }
    }

    /// Whether text output is wanted.
    pub fn text(&self) -> bool {
        self.format == OutputFormat::Text
    }

    /// The AWS SDK configuration: credentials, profiles, region and
    /// `AWS_ENDPOINT_URL` from the standard chain.
    #[cfg(feature = "aws")]
    pub async fn sdk(&self) -> &aws_config::SdkConfig {
        self.sdk
            .get_or_init(|| {
                // The app name goes into every request's user agent, so
                // CloudTrail (and the tests' request recorder) can tell
                // this updater's calls from others.
                let defaults = aws_config::defaults(aws_config::BehaviorVersion::latest());
                match aws_config::AppName::new("runner-updater") {
                    Ok(name) => defaults.app_name(name),
                    Err(_) => defaults,
                }
                .load()
            })
            .await
    }
}
