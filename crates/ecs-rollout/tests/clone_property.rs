//! Property: for arbitrary task definitions, the clone registered on the
//! simulator differs from the running revision in exactly the runner image
//! and its version label (and drops this crate's own marker tags).

use std::{collections::BTreeMap, sync::Arc};

use ecs_rollout::{
    ContainerDefinition, EcsApi, HealthCheck, MARKER_TAG_PREFIX, SimulatedEcs, TaskDefinitionSpec,
    diff,
    task_definition::{EphemeralStorage, KeyValuePair, LogConfiguration, RuntimePlatform, Secret},
};
use proptest::{collection, option, prelude::*};
use runner_version::{ImageRef, Version};
use update_clock::ManualClock;

const LABEL: &str = "org.opencontainers.image.version";

fn image() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("".to_owned()),
            Just("registry.example.com:5000/".to_owned()),
            Just("123456789012.dkr.ecr.us-east-1.amazonaws.com/".to_owned()),
        ],
        "[a-z]{1,8}(/[a-z]{1,8})?",
        "[a-z0-9_][a-z0-9._-]{0,9}",
    )
        .prop_map(|(registry, repo, tag)| format!("{registry}{repo}:{tag}"))
}

prop_compose! {
    fn container()(
        image in image(),
        essential in option::of(any::<bool>()),
        labels in collection::btree_map("[a-z.]{1,12}", "[ -~]{0,12}", 0..4),
        environment in collection::vec(("[A-Z_]{1,8}", "[ -~]{0,10}"), 0..4),
        secrets in collection::vec(("[A-Z_]{1,8}", "arn:aws:ssm:us-east-1:1:parameter/[a-z]{1,8}"), 0..3),
        health in option::of((collection::vec("[ -~]{1,10}", 1..3), option::of(5..300i32), option::of(1..10i32), option::of(0..300i32))),
        cpu in 0..4096i32,
        memory in option::of(128..8192i32),
        command in collection::vec("[ -~]{0,10}", 0..3),
        log_group in option::of("[a-z/-]{1,16}"),
        with_version_label in any::<bool>(),
    ) -> ContainerDefinition {
        let mut docker_labels = labels;
        if with_version_label {
            docker_labels.insert(LABEL.into(), "20240101.1".into());
        }
        ContainerDefinition {
            name: String::new(),
            image,
            essential,
            docker_labels,
            environment: environment
                .into_iter()
                .map(|(name, value)| KeyValuePair { name: Some(name), value: Some(value) })
                .collect(),
            secrets: secrets
                .into_iter()
                .map(|(name, value_from)| Secret { name, value_from })
                .collect(),
            health_check: health.map(|(command, interval, retries, start_period)| HealthCheck {
                command,
                interval,
                retries,
                start_period,
                ..Default::default()
            }),
            cpu,
            memory,
            command,
            log_configuration: log_group.map(|group| LogConfiguration {
                log_driver: "awslogs".into(),
                options: BTreeMap::from([("awslogs-group".into(), group)]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

prop_compose! {
    fn task_definition()(
        family in "[a-z][a-z0-9-]{0,20}",
        containers in collection::vec(container(), 1..4),
        runner_index in any::<prop::sample::Index>(),
        tags in collection::btree_map("[a-z][a-z:-]{0,12}", "[a-z0-9 ]{0,10}", 0..5),
        marker in option::of("[a-z0-9 ]{1,10}"),
        task_role in option::of("arn:aws:iam::1:role/[a-z]{1,8}"),
        execution_role in option::of("arn:aws:iam::1:role/[a-z]{1,8}"),
        cpu in option::of(prop_oneof![Just("256"), Just("1024"), Just("4096")]),
        memory in option::of(prop_oneof![Just("512"), Just("2048"), Just("8192")]),
        ephemeral in option::of(21..200i32),
        arm in option::of(any::<bool>()),
        network_mode in option::of(prop_oneof![Just("awsvpc"), Just("bridge")]),
    ) -> (TaskDefinitionSpec, String) {
        let mut containers = containers;
        let runner = runner_index.index(containers.len());
        for (i, c) in containers.iter_mut().enumerate() {
            c.name = if i == runner { "runner".into() } else { format!("sidecar{i}") };
        }
        let mut tags = tags;
        if let Some(reason) = marker {
            tags.insert(format!("{MARKER_TAG_PREFIX}reason"), reason);
        }
        let spec = TaskDefinitionSpec {
            family,
            container_definitions: containers,
            tags,
            task_role_arn: task_role,
            execution_role_arn: execution_role,
            cpu: cpu.map(str::to_owned),
            memory: memory.map(str::to_owned),
            ephemeral_storage: ephemeral.map(|size_in_gib| EphemeralStorage { size_in_gib }),
            runtime_platform: arm.map(|arm| RuntimePlatform {
                cpu_architecture: Some(if arm { "ARM64" } else { "X86_64" }.into()),
                operating_system_family: Some("LINUX".into()),
            }),
            network_mode: network_mode.map(str::to_owned),
            ..Default::default()
        };
        (spec, "runner".to_owned())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn clone_differs_in_image_and_label_only((old_spec, runner) in task_definition(), new_image in image()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
            let ecs = SimulatedEcs::new(clock, 1);
            let old = ecs.register_task_definition(&old_spec).await.unwrap();
            let old = ecs.describe_task_definition(&old.arn).await.unwrap();

            let image = ImageRef::parse(&new_image).unwrap();
            let version = Version::parse("20250102.7").unwrap();
            let new_spec = old.spec.with_runner_image(&runner, &image, Some((LABEL, &version))).unwrap();
            let new = ecs.register_task_definition(&new_spec).await.unwrap();
            let new = ecs.describe_task_definition(&new.arn).await.unwrap();

            let old_runner = old.spec.container(&runner).unwrap();
            let mut expected = Vec::new();
            if old_runner.image != image.to_string() {
                expected.push("containerDefinitions[runner].image".to_owned());
            }
            if old_runner.docker_labels.get(LABEL).map(String::as_str) != Some("20250102.7") {
                expected.push(format!("containerDefinitions[runner].dockerLabels.{LABEL}"));
            }
            for key in old.spec.tags.keys().filter(|k| k.starts_with(MARKER_TAG_PREFIX)) {
                expected.push(format!("tags.{key}"));
            }
            expected.sort();
            let mut got: Vec<String> = diff(&old.spec, &new.spec).into_iter().map(|c| c.path).collect();
            got.sort();
            prop_assert_eq!(got, expected);
            Ok(())
        })?;
    }

    #[test]
    fn diff_sees_any_other_change(
        (spec, _) in task_definition(),
        change in 0..5usize,
    ) {
        let mut changed = spec.clone();
        let expected = match change {
            0 => { changed.execution_role_arn = Some("arn:aws:iam::1:role/other".into()); "executionRoleArn".to_owned() }
            1 => {
                let path = if changed.ephemeral_storage.is_some() { "ephemeralStorage.sizeInGiB" } else { "ephemeralStorage" };
                changed.ephemeral_storage = Some(EphemeralStorage { size_in_gib: 201 });
                path.to_owned()
            }
            2 => { changed.tags.insert("zz-new".into(), "v".into()); "tags.zz-new".to_owned() }
            3 => { changed.container_definitions[0].cpu += 1; format!("containerDefinitions[{}].cpu", changed.container_definitions[0].name) }
            _ => { changed.cpu = Some("16384".into()); "cpu".to_owned() }
        };
        let paths: Vec<String> = diff(&spec, &changed).into_iter().map(|c| c.path).collect();
        prop_assert_eq!(paths, vec![expected]);
    }
}
