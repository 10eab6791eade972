//! The `CfnApi` conformance suite on the in-memory `FakeCfn`, bare and
//! behind the `RecordingCfn` decorator.
use cfn_stack::{FakeCfn, RecordingCfn, conformance};

#[tokio::test]
async fn fake_cfn_passes_the_suite() {
    let cfn = FakeCfn::new();
    let mut n = 0;
    conformance::run_all(&cfn, |name| {
        n += 1;
        let fixture = conformance::fake_fixture(&cfn, &format!("{name}-{n}"));
        async move { fixture }
    })
    .await;
}

#[tokio::test]
async fn recording_decorator_passes_the_suite() {
    let cfn = FakeCfn::new();
    let recording = RecordingCfn::new(cfn.clone());
    conformance::run_all(&recording, |name| {
        let fixture = conformance::fake_fixture(&cfn, name);
        async move { fixture }
    })
    .await;
    assert!(!recording.mutating_calls().is_empty());
}
