//! Availability zones are decided by subnets: validating that the chosen
//! subnets exist, share one VPC and cover every requested zone.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::{self, Debug},
    sync::{Arc, Mutex},
};

use async_trait::async_trait;

use crate::Error;

/// One subnet as the directory knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubnetInfo {
    /// The subnet id, e.g. `subnet-0abc`.
    pub id: String,
    /// The VPC it belongs to.
    pub vpc_id: String,
    /// Its availability zone name, e.g. `eu-west-1a`.
    pub availability_zone: String,
}

/// Looks subnets up by id.
///
/// Contract: returns the subnets among `ids` that exist (in any order);
/// an id that does not exist is simply absent, never an error.
#[async_trait]
pub trait SubnetDirectory: Send + Sync + Debug + 'static {
    /// The existing subnets among `ids`.
    async fn subnets(&self, ids: &[String]) -> Result<Vec<SubnetInfo>, Error>;
}

#[async_trait]
impl<T: SubnetDirectory + ?Sized> SubnetDirectory for Arc<T> {
    async fn subnets(&self, ids: &[String]) -> Result<Vec<SubnetInfo>, Error> {
        (**self).subnets(ids).await
    }
}

#[async_trait]
impl<T: SubnetDirectory + ?Sized> SubnetDirectory for Box<T> {
    async fn subnets(&self, ids: &[String]) -> Result<Vec<SubnetInfo>, Error> {
        (**self).subnets(ids).await
    }
}

/// An in-memory [`SubnetDirectory`].
#[derive(Debug, Clone, Default)]
pub struct InMemorySubnets {
    subnets: Arc<Mutex<BTreeMap<String, SubnetInfo>>>,
}

impl InMemorySubnets {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a subnet.
    pub fn insert(&self, id: &str, vpc_id: &str, availability_zone: &str) {
        self.subnets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id.to_string(),
                SubnetInfo {
                    id: id.to_string(),
                    vpc_id: vpc_id.to_string(),
                    availability_zone: availability_zone.to_string(),
                },
            );
    }
}

#[async_trait]
impl SubnetDirectory for InMemorySubnets {
    async fn subnets(&self, ids: &[String]) -> Result<Vec<SubnetInfo>, Error> {
        let map = self.subnets.lock().unwrap_or_else(|e| e.into_inner());
        Ok(ids.iter().filter_map(|id| map.get(id).cloned()).collect())
    }
}

/// What to check: the requested zones, the chosen subnets and, optionally,
/// the VPC they must belong to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubnetRequest {
    /// Availability zone names that must each have a subnet.
    pub availability_zones: Vec<String>,
    /// Subnet ids chosen for the service.
    pub subnet_ids: Vec<String>,
    /// The VPC every subnet must be in, if known (e.g. the `VpcId` parameter).
    pub vpc_id: Option<String>,
}

/// The result of [`validate_subnets`]: every problem, not only the first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubnetReport {
    /// The subnets found, by id.
    pub found: BTreeMap<String, SubnetInfo>,
    /// Subnet ids that do not exist.
    pub missing_subnets: Vec<String>,
    /// The VPCs of the found subnets (more than one is a problem).
    pub vpcs: BTreeSet<String>,
    /// Subnets not in the expected VPC (when one was given).
    pub subnets_outside_vpc: Vec<String>,
    /// Requested zones without any chosen subnet.
    pub zones_without_subnet: Vec<String>,
    /// Chosen subnets in zones that were not requested.
    pub subnets_outside_zones: Vec<String>,
    /// No subnet or no zone was given.
    pub empty_request: bool,
}

impl SubnetReport {
    /// No problem was found.
    pub fn is_valid(&self) -> bool {
        self.problems().is_empty()
    }

    /// Every problem, one sentence each.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.empty_request {
            problems.push("no availability zone or no subnet was given".to_string());
        }
        if !self.missing_subnets.is_empty() {
            problems.push(format!(
                "subnets do not exist: {}",
                self.missing_subnets.join(", ")
            ));
        }
        if self.vpcs.len() > 1 {
            let by_vpc: Vec<String> = self
                .vpcs
                .iter()
                .map(|vpc| {
                    let ids: Vec<&str> = self
                        .found
                        .values()
                        .filter(|s| &s.vpc_id == vpc)
                        .map(|s| s.id.as_str())
                        .collect();
                    format!("{vpc} ({})", ids.join(", "))
                })
                .collect();
            problems.push(format!(
                "subnets are in more than one VPC: {}",
                by_vpc.join("; ")
            ));
        }
        if !self.subnets_outside_vpc.is_empty() {
            problems.push(format!(
                "subnets are not in the stack's VPC: {}",
                self.subnets_outside_vpc.join(", ")
            ));
        }
        if !self.zones_without_subnet.is_empty() {
            problems.push(format!(
                "availability zones without a subnet: {}",
                self.zones_without_subnet.join(", ")
            ));
        }
        if !self.subnets_outside_zones.is_empty() {
            let described: Vec<String> = self
                .subnets_outside_zones
                .iter()
                .map(|id| match self.found.get(id) {
                    Some(s) => format!("{id} ({})", s.availability_zone),
                    None => id.clone(),
                })
                .collect();
            problems.push(format!(
                "subnets outside the requested availability zones: {}",
                described.join(", ")
            ));
        }
        problems
    }
}

impl fmt::Display for SubnetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let problems = self.problems();
        if problems.is_empty() {
            f.write_str("subnets cover every requested availability zone")
        } else {
            f.write_str(&problems.join("; "))
        }
    }
}

/// Looks the subnets up and checks that they exist, share one VPC (the
/// expected one, if given) and cover every requested availability zone;
/// reports zones without a subnet and subnets outside the zones.
pub async fn validate_subnets(
    directory: &dyn SubnetDirectory,
    request: &SubnetRequest,
) -> Result<SubnetReport, Error> {
    let ids: Vec<String> = dedup(&request.subnet_ids);
    let zones: Vec<String> = dedup(&request.availability_zones);
    let found_list = if ids.is_empty() {
        Vec::new()
    } else {
        directory.subnets(&ids).await?
    };
    let found: BTreeMap<String, SubnetInfo> = found_list
        .into_iter()
        .filter(|s| ids.contains(&s.id))
        .map(|s| (s.id.clone(), s))
        .collect();
    let missing_subnets = ids
        .iter()
        .filter(|id| !found.contains_key(*id))
        .cloned()
        .collect();
    let vpcs = found.values().map(|s| s.vpc_id.clone()).collect();
    let subnets_outside_vpc = match &request.vpc_id {
        Some(vpc) => found
            .values()
            .filter(|s| &s.vpc_id != vpc)
            .map(|s| s.id.clone())
            .collect(),
        None => Vec::new(),
    };
    let covered: BTreeSet<&str> = found
        .values()
        .map(|s| s.availability_zone.as_str())
        .collect();
    let zones_without_subnet = zones
        .iter()
        .filter(|z| !covered.contains(z.as_str()))
        .cloned()
        .collect();
    let subnets_outside_zones = ids
        .iter()
        .filter(|id| {
            found
                .get(*id)
                .is_some_and(|s| !zones.contains(&s.availability_zone))
        })
        .cloned()
        .collect();
    Ok(SubnetReport {
        found,
        missing_subnets,
        vpcs,
        subnets_outside_vpc,
        zones_without_subnet,
        subnets_outside_zones,
        empty_request: ids.is_empty() || zones.is_empty(),
    })
}

fn dedup(items: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && seen.insert(s.clone()))
        .collect()
}

/// Which stack parameters hold the availability zones, the subnets and the
/// VPC. Values are comma-separated lists (`List<AWS::EC2::Subnet::Id>`,
/// `List<AWS::EC2::AvailabilityZone::Name>`, `CommaDelimitedList`).
///
/// Defaults: `AvailabilityZones`, `["SubnetIds"]`, `Some("VpcId")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzParameterNames {
    /// The parameter listing availability zones.
    pub availability_zones: String,
    /// The parameters listing subnet ids (several when a template splits
    /// public and private subnets).
    pub subnets: Vec<String>,
    /// The parameter holding the VPC id, if the template has one.
    pub vpc: Option<String>,
}

impl Default for AzParameterNames {
    fn default() -> Self {
        Self {
            availability_zones: "AvailabilityZones".into(),
            subnets: vec!["SubnetIds".into()],
            vpc: Some("VpcId".into()),
        }
    }
}

impl AzParameterNames {
    /// Checks the names: none empty, at least one subnet parameter.
    pub fn validate(&self) -> Result<(), Error> {
        if self.availability_zones.trim().is_empty()
            || self.subnets.is_empty()
            || self.subnets.iter().any(|s| s.trim().is_empty())
            || self.vpc.as_deref().is_some_and(|v| v.trim().is_empty())
        {
            return Err(Error::InvalidConfig(
                "AzParameterNames needs a zone parameter and at least one subnet parameter, none empty"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Whether `key` is one of the zone, subnet or VPC parameters.
    pub fn concerns(&self, key: &str) -> bool {
        self.availability_zones == key
            || self.subnets.iter().any(|s| s == key)
            || self.vpc.as_deref() == Some(key)
    }

    /// The subnet request described by a full set of parameter values.
    pub fn request_from(&self, parameters: &BTreeMap<String, String>) -> SubnetRequest {
        SubnetRequest {
            availability_zones: split_list(parameters.get(&self.availability_zones)),
            subnet_ids: self
                .subnets
                .iter()
                .flat_map(|key| split_list(parameters.get(key)))
                .collect(),
            vpc_id: self
                .vpc
                .as_ref()
                .and_then(|key| parameters.get(key))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
        }
    }

    /// A warning when the zone parameter changes but no subnet parameter
    /// does: availability is decided by the subnets, so changing the zones
    /// alone does not change where tasks run.
    pub fn zone_change_warning(
        &self,
        before: &BTreeMap<String, String>,
        after: &BTreeMap<String, String>,
    ) -> Option<String> {
        let zones_changed = split_set(before.get(&self.availability_zones))
            != split_set(after.get(&self.availability_zones));
        let subnets_changed = self
            .subnets
            .iter()
            .any(|key| split_set(before.get(key)) != split_set(after.get(key)));
        (zones_changed && !subnets_changed).then(|| {
            format!(
                "parameter {} changes but none of {} does: availability is decided by the \
                 subnets, so changing the zones alone does not change where tasks run",
                self.availability_zones,
                self.subnets.join(", ")
            )
        })
    }
}

fn split_list(value: Option<&String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn split_set(value: Option<&String>) -> BTreeSet<String> {
    split_list(value).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn directory() -> InMemorySubnets {
        let d = InMemorySubnets::new();
        d.insert("subnet-a", "vpc-1", "eu-west-1a");
        d.insert("subnet-b", "vpc-1", "eu-west-1b");
        d.insert("subnet-c", "vpc-1", "eu-west-1c");
        d.insert("subnet-x", "vpc-2", "eu-west-1a");
        d
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn validation_table() {
        struct Case {
            name: &'static str,
            zones: &'static [&'static str],
            subnets: &'static [&'static str],
            vpc: Option<&'static str>,
            problems: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "three zones, three subnets",
                zones: &["eu-west-1a", "eu-west-1b", "eu-west-1c"],
                subnets: &["subnet-a", "subnet-b", "subnet-c"],
                vpc: Some("vpc-1"),
                problems: &[],
            },
            Case {
                name: "a zone without subnet",
                zones: &["eu-west-1a", "eu-west-1b", "eu-west-1c"],
                subnets: &["subnet-a", "subnet-b"],
                vpc: None,
                problems: &["availability zones without a subnet: eu-west-1c"],
            },
            Case {
                name: "subnet outside the zones",
                zones: &["eu-west-1a"],
                subnets: &["subnet-a", "subnet-b"],
                vpc: None,
                problems: &[
                    "subnets outside the requested availability zones: subnet-b (eu-west-1b)",
                ],
            },
            Case {
                name: "another VPC",
                zones: &["eu-west-1a", "eu-west-1b"],
                subnets: &["subnet-x", "subnet-b"],
                vpc: Some("vpc-1"),
                problems: &[
                    "subnets are in more than one VPC: vpc-1 (subnet-b); vpc-2 (subnet-x)",
                    "subnets are not in the stack's VPC: subnet-x",
                ],
            },
            Case {
                name: "nonexistent subnet",
                zones: &["eu-west-1a", "eu-west-1b"],
                subnets: &["subnet-a", "subnet-nope"],
                vpc: None,
                problems: &[
                    "subnets do not exist: subnet-nope",
                    "availability zones without a subnet: eu-west-1b",
                ],
            },
            Case {
                name: "empty",
                zones: &[],
                subnets: &[],
                vpc: None,
                problems: &["no availability zone or no subnet was given"],
            },
        ];
        let directory = directory();
        for case in cases {
            let report = validate_subnets(
                &directory,
                &SubnetRequest {
                    availability_zones: strings(case.zones),
                    subnet_ids: strings(case.subnets),
                    vpc_id: case.vpc.map(Into::into),
                },
            )
            .await
            .unwrap();
            assert_eq!(report.problems(), strings(case.problems), "{}", case.name);
            assert_eq!(report.is_valid(), case.problems.is_empty(), "{}", case.name);
        }
    }

    #[test]
    fn zone_change_warning_table() {
        let names = AzParameterNames::default();
        let params = |zones: &str, subnets: &str| {
            BTreeMap::from([
                ("AvailabilityZones".to_string(), zones.to_string()),
                ("SubnetIds".to_string(), subnets.to_string()),
            ])
        };
        let before = params("a,b", "s1,s2");
        let table = [
            (params("a,b,c", "s1,s2"), true),
            (params("a,b,c", "s1,s2,s3"), false),
            (params("b, a", "s1,s2"), false),
            (params("a,b", "s1,s2,s3"), false),
            (params("a,b", "s1,s2"), false),
        ];
        for (after, warns) in table {
            assert_eq!(
                names.zone_change_warning(&before, &after).is_some(),
                warns,
                "{after:?}"
            );
        }
    }

    #[test]
    fn request_from_parameters() {
        let names = AzParameterNames {
            subnets: vec!["PublicSubnets".into(), "PrivateSubnets".into()],
            ..AzParameterNames::default()
        };
        names.validate().unwrap();
        let params = BTreeMap::from([
            ("AvailabilityZones".to_string(), "a, b".to_string()),
            ("PublicSubnets".to_string(), "s1,s2".to_string()),
            ("PrivateSubnets".to_string(), "s3,".to_string()),
            ("VpcId".to_string(), "vpc-1".to_string()),
        ]);
        assert_eq!(
            names.request_from(&params),
            SubnetRequest {
                availability_zones: strings(&["a", "b"]),
                subnet_ids: strings(&["s1", "s2", "s3"]),
                vpc_id: Some("vpc-1".into()),
            }
        );
        assert!(
            AzParameterNames {
                subnets: vec![],
                ..AzParameterNames::default()
            }
            .validate()
            .is_err()
        );
    }

    proptest! {
        /// Whatever is chosen, every requested zone is either covered by a
        /// found subnet or reported, and every found subnet is either in a
        /// requested zone or reported.
        #[test]
        fn every_zone_and_subnet_is_accounted_for(
            zones in prop::collection::vec(prop::sample::select(vec!["eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1d"]), 0..4),
            subnets in prop::collection::vec(prop::sample::select(vec!["subnet-a", "subnet-b", "subnet-c", "subnet-x", "subnet-gone"]), 0..5),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let report = rt.block_on(validate_subnets(&directory(), &SubnetRequest {
                availability_zones: strings(&zones),
                subnet_ids: strings(&subnets),
                vpc_id: None,
            })).unwrap();
            for zone in &zones {
                let covered = report.found.values().any(|s| &s.availability_zone == zone);
                prop_assert_eq!(covered, !report.zones_without_subnet.contains(&zone.to_string()));
            }
            for id in &subnets {
                let found = report.found.get(*id);
                prop_assert_eq!(found.is_none(), report.missing_subnets.contains(&id.to_string()));
                if let Some(s) = found {
                    prop_assert_eq!(!zones.contains(&s.availability_zone.as_str()), report.subnets_outside_zones.contains(&id.to_string()));
                }
            }
        }
    }
}
