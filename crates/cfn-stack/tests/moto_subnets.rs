//! `Ec2Subnets` and subnet validation against moto's EC2 on 127.0.0.1,
//! each test in its own moto account.
use std::sync::Arc;

use cfn_stack::{
    ApplyMode, Ec2Subnets, Error, FakeCfn, FakeTemplate, NoProgress, StackChange,
    StackUpdateOutcome, StackUpdater, StackUpdaterConfig, SubnetDirectory, SubnetRequest,
    validate_subnets,
};
use moto_harness::{MotoAccount, MotoServer, unique_account_id};
use update_clock::ManualClock;

struct Network {
    client: aws_sdk_ec2::Client,
    vpc: String,
    /// Subnets of `vpc` in us-east-1a, us-east-1b, us-east-1c.
    subnets: Vec<String>,
    /// A subnet of another VPC, in us-east-1a.
    foreign: String,
}

async fn network() -> Network {
    let moto = MotoServer::shared();
    let config = aws_sdk_ec2::Config::from(&moto.sdk_config())
        .to_builder()
        .interceptor(MotoAccount(unique_account_id()))
        .build();
    let client = aws_sdk_ec2::Client::from_conf(config);
    let vpc = |cidr: &'static str| {
        let client = client.clone();
        async move {
            client
                .create_vpc()
                .cidr_block(cidr)
                .send()
                .await
                .expect("create vpc")
                .vpc()
                .and_then(|v| v.vpc_id())
                .expect("vpc id")
                .to_string()
        }
    };
    let subnet = |vpc: String, cidr: &'static str, zone: &'static str| {
        let client = client.clone();
        async move {
            client
                .create_subnet()
                .vpc_id(vpc)
                .cidr_block(cidr)
                .availability_zone(zone)
                .send()
                .await
                .expect("create subnet")
                .subnet()
                .and_then(|s| s.subnet_id())
                .expect("subnet id")
                .to_string()
        }
    };
    let main = vpc("10.10.0.0/16").await;
    let other = vpc("10.20.0.0/16").await;
    let subnets = vec![
        subnet(main.clone(), "10.10.1.0/24", "us-east-1a").await,
        subnet(main.clone(), "10.10.2.0/24", "us-east-1b").await,
        subnet(main.clone(), "10.10.3.0/24", "us-east-1c").await,
    ];
    let foreign = subnet(other, "10.20.1.0/24", "us-east-1a").await;
    Network {
        client,
        vpc: main,
        subnets,
        foreign,
    }
}

fn zones(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn subnets_in_three_zones_are_validated_against_moto_ec2() {
    let net = network().await;
    let directory = Ec2Subnets::new(net.client.clone());
    let three = zones(&["us-east-1a", "us-east-1b", "us-east-1c"]);

    let report = validate_subnets(
        &directory,
        &SubnetRequest {
            availability_zones: three.clone(),
            subnet_ids: net.subnets.clone(),
            vpc_id: Some(net.vpc.clone()),
            ..SubnetRequest::default()
        },
    )
    .await
    .unwrap();
    assert!(report.is_valid(), "{report}");
    assert_eq!(report.found.len(), 3);
    assert_eq!(
        report.found[&net.subnets[2]].availability_zone,
        "us-east-1c"
    );

    // A requested zone without a subnet, and a subnet outside the zones.
    let report = validate_subnets(
        &directory,
        &SubnetRequest {
            availability_zones: zones(&["us-east-1a", "us-east-1b", "us-east-1d"]),
            subnet_ids: net.subnets.clone(),
            vpc_id: None,
            ..SubnetRequest::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.zones_without_subnet, zones(&["us-east-1d"]));
    assert_eq!(report.subnets_outside_zones, vec![net.subnets[2].clone()]);
    assert!(!report.is_valid());

    // A subnet from another VPC.
    let report = validate_subnets(
        &directory,
        &SubnetRequest {
            availability_zones: three.clone(),
            subnet_ids: vec![
                net.foreign.clone(),
                net.subnets[1].clone(),
                net.subnets[2].clone(),
            ],
            vpc_id: Some(net.vpc.clone()),
            ..SubnetRequest::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.vpcs.len(), 2, "{report}");
    assert_eq!(report.subnets_outside_vpc, vec![net.foreign.clone()]);
    assert!(report.to_string().contains("more than one VPC"), "{report}");

    // A subnet id that does not exist: reported, not a failed request.
    let ghost = "subnet-0123456789abcdef0".to_string();
    let report = validate_subnets(
        &directory,
        &SubnetRequest {
            availability_zones: three,
            subnet_ids: vec![
                net.subnets[0].clone(),
                net.subnets[1].clone(),
                ghost.clone(),
            ],
            vpc_id: Some(net.vpc.clone()),
            ..SubnetRequest::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.missing_subnets, vec![ghost.clone()]);
    assert_eq!(report.zones_without_subnet, zones(&["us-east-1c"]));
    assert!(
        report
            .to_string()
            .contains("subnets do not exist: subnet-0123456789abcdef0")
    );
    assert!(directory.subnets(&[ghost]).await.unwrap().is_empty());
}

/// Expanding the runner to a third zone: the updater checks the new
/// subnets against moto EC2 before it touches the stack (the stack itself
/// is a `FakeCfn` one, whose parameters name the moto subnets).
#[tokio::test]
async fn updater_checks_subnets_with_ec2_before_updating() {
    let net = network().await;
    let cfn = FakeCfn::new();
    let url = "https://runner.s3.amazonaws.com/runner.yaml";
    cfn.add_template(
        url,
        FakeTemplate::new()
            .parameter("AvailabilityZones", None)
            .parameter("SubnetIds", None)
            .parameter("VpcId", None),
    );
    let two = format!("{},{}", net.subnets[0], net.subnets[1]);
    cfn.create_stack(
        "runner",
        url,
        &[
            ("AvailabilityZones", "us-east-1a,us-east-1b"),
            ("SubnetIds", &two),
            ("VpcId", &net.vpc),
        ],
        &[],
    )
    .unwrap();
    let updater = StackUpdater::new(
        Arc::new(cfn.clone()),
        Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025)),
        StackUpdaterConfig::default(),
    )
    .unwrap()
    .with_subnet_directory(Arc::new(Ec2Subnets::new(net.client.clone())));

    let wrong = StackChange::parameters([
        (
            "AvailabilityZones",
            "us-east-1a,us-east-1b,us-east-1c".to_string(),
        ),
        ("SubnetIds", format!("{two},{}", net.foreign)),
    ]);
    let err = updater
        .apply("runner", &wrong, ApplyMode::ChangeSet, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSubnets { .. }), "{err}");
    assert!(cfn.change_set_names("runner").is_empty());

    let right = StackChange::parameters([
        (
            "AvailabilityZones",
            "us-east-1a,us-east-1b,us-east-1c".to_string(),
        ),
        ("SubnetIds", net.subnets.join(",")),
    ]);
    let outcome = updater
        .apply("runner", &right, ApplyMode::ChangeSet, &NoProgress)
        .await
        .unwrap();
    assert!(
        matches!(outcome, StackUpdateOutcome::Updated { .. }),
        "{outcome:?}"
    );
}

/// moto returns each subnet's `AvailabilityZoneId` (us-east-1a is
/// `use1-az6`, 1b `use1-az1`, 1c `use1-az2` in moto's zone table), so zones
/// may be requested by id as well as by name.
#[tokio::test]
async fn zones_requested_by_id_are_matched_with_moto_availability_zone_ids() {
    let net = network().await;
    let directory = Ec2Subnets::new(net.client.clone());
    let found = directory.subnets(&net.subnets).await.unwrap();
    let ids: Vec<(String, Option<String>)> = net
        .subnets
        .iter()
        .map(|id| {
            let s = found.iter().find(|s| &s.id == id).expect("found");
            (s.availability_zone.clone(), s.availability_zone_id.clone())
        })
        .collect();
    assert_eq!(
        ids,
        vec![
            ("us-east-1a".to_string(), Some("use1-az6".to_string())),
            ("us-east-1b".to_string(), Some("use1-az1".to_string())),
            ("us-east-1c".to_string(), Some("use1-az2".to_string())),
        ]
    );

    // Ids and names mixed: every zone covered.
    let report = validate_subnets(
        &directory,
        &SubnetRequest {
            availability_zones: zones(&["use1-az6", "us-east-1b", "use1-az2"]),
            subnet_ids: net.subnets.clone(),
            vpc_id: Some(net.vpc.clone()),
            ..SubnetRequest::default()
        },
    )
    .await
    .unwrap();
    assert!(report.is_valid(), "{report}");

    // An id no subnet is in, and a subnet outside the requested ids.
    let report = validate_subnets(
        &directory,
        &SubnetRequest {
            availability_zones: zones(&["use1-az6", "use1-az4"]),
            subnet_ids: vec![net.subnets[0].clone(), net.subnets[1].clone()],
            vpc_id: Some(net.vpc.clone()),
            ..SubnetRequest::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.zones_without_subnet, zones(&["use1-az4"]));
    assert_eq!(report.subnets_outside_zones, vec![net.subnets[1].clone()]);
    assert!(
        report
            .to_string()
            .contains(&format!("{} (us-east-1b / use1-az1)", net.subnets[1])),
        "{report}"
    );
}
