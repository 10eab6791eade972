//! The harness itself: moto starts on 127.0.0.1, S3 objects can be seeded,
//! and reset works.
use moto_harness::MotoServer;

#[test]
fn starts_seeds_s3_and_resets() {
    let moto = MotoServer::start();
    assert!(moto.endpoint().starts_with("http://127.0.0.1:"));
    let url = moto.put_s3_object("templates", "stack.json", b"{}");
    assert_eq!(url, "https://s3.amazonaws.com/templates/stack.json");
    moto.reset();
}
