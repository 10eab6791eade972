//! Manifest parse + signature verification (runner-version): a signed
//! envelope with two Ed25519 signatures checked against a threshold-2
//! trust policy, and the unsigned Gitpod manifest for comparison.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use runner_version::{
    Channel, ImageRef, Release, ReleaseVerifier, SignedManifest, TrustPolicy,
    ed25519_dalek::SigningKey,
};

fn release() -> Release {
    Release {
        version: "20250101.3".parse().unwrap(),
        channel: Channel::Stable,
        image: ImageRef::parse(&format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/gitpod/runner:20250101.3@sha256:{}",
            "ab".repeat(32)
        ))
        .unwrap(),
        proxy_image: Some(
            ImageRef::parse(&format!(
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/gitpod/proxy:20250101.3@sha256:{}",
                "cd".repeat(32)
            ))
            .unwrap(),
        ),
        infra_version: Some("infra-17".into()),
        template_url: "https://templates.example.com/runner/20250101.3.json".into(),
        template_sha256: Some("ef".repeat(32)),
        released_at: Some("2025-01-01T00:00:00Z".parse().unwrap()),
        expires: Some("2099-01-01T00:00:00Z".parse().unwrap()),
        waves: Default::default(),
    }
}

fn bench_manifest(c: &mut Criterion) {
    let k1 = SigningKey::from_bytes(&[1; 32]);
    let k2 = SigningKey::from_bytes(&[2; 32]);
    let bytes = SignedManifest::sign(&release(), &[("k1", &k1), ("k2", &k2)])
        .unwrap()
        .to_json();
    let verifier = ReleaseVerifier::builder()
        .trust_policy(
            TrustPolicy::new(2)
                .with_key("k1", k1.verifying_key())
                .with_key("k2", k2.verifying_key()),
        )
        .build()
        .unwrap();
    assert!(verifier.decode(&bytes, &Channel::Stable, "bench").is_ok());
    c.bench_function(
        "signed manifest: parse + verify 2 signatures (threshold 2)",
        |b| {
            b.iter(|| {
                verifier
                    .decode(black_box(&bytes), &Channel::Stable, "bench")
                    .unwrap()
            })
        },
    );

    let gitpod = format!(
        r#"{{"version":"20250101.3","image":"public.ecr.aws/gitpod/runner:20250101.3",
        "proxy_image":"public.ecr.aws/gitpod/proxy:20250101.3",
        "cloudformation_template_url":"https://example.com/runner.json",
        "image_digest":"sha256:{0}","proxy_image_digest":"sha256:{0}"}}"#,
        "ab".repeat(32)
    );
    let unsigned = ReleaseVerifier::builder().allow_unsigned().build().unwrap();
    assert!(
        unsigned
            .decode(gitpod.as_bytes(), &Channel::Stable, "bench")
            .is_ok()
    );
    c.bench_function("gitpod manifest: parse (unsigned, opted in)", |b| {
        b.iter(|| {
            unsigned
                .decode(black_box(gitpod.as_bytes()), &Channel::Stable, "bench")
                .unwrap()
        })
    });
}

criterion_group!(benches, bench_manifest);
criterion_main!(benches);
