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
    /// Its availability zone id, e.g. `euw1-az1`, when known (the same id
    /// names the same physical zone in every account, unlike the name).
    pub availability_zone_id: Option<String>,
}

impl SubnetInfo {
    /// Whether the subnet is in `zone`, given as a name (`us-east-1a`) or
    /// an id (`use1-az1`).
    ///
    /// ```
    /// use cfn_stack::SubnetInfo;
    ///
    /// let subnet = SubnetInfo {
    ///     id: "subnet-a".into(),
    ///     vpc_id: "vpc-1".into(),
    ///     availability_zone: "us-east-1a".into(),
    ///     availability_zone_id: Some("use1-az6".into()),
    /// };
    /// assert!(subnet.in_zone("us-east-1a"));
    /// assert!(subnet.in_zone("use1-az6"));
    /// assert!(!subnet.in_zone("use1-az1"));
    /// ```
    pub fn in_zone(&self, zone: &str) -> bool {
        self.availability_zone == zone || self.availability_zone_id.as_deref() == Some(zone)
    }

    /// `name (id)`, or the name alone when the id is unknown.
    fn zone_label(&self) -> String {
        match &self.availability_zone_id {
            Some(id) => format!("{} / {id}", self.availability_zone),
            None => self.availability_zone.clone(),
        }
    }
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

    /// Adds (or replaces) a subnet whose zone id is unknown.
    pub fn insert(&self, id: &str, vpc_id: &str, availability_zone: &str) {
        self.put(id, vpc_id, availability_zone, None);
    }

    /// Adds (or replaces) a subnet with its zone name and zone id.
    ///
    /// ```
    /// use cfn_stack::{InMemorySubnets, SubnetRequest, validate_subnets};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let subnets = InMemorySubnets::new();
    /// subnets.insert_with_zone_id("subnet-a", "vpc-1", "us-east-1a", "use1-az6");
    /// let request = SubnetRequest {
    ///     availability_zones: vec!["use1-az6".into()],
    ///     subnet_ids: vec!["subnet-a".into()],
    ///     ..SubnetRequest::default()
    /// };
    /// assert!(validate_subnets(&subnets, &request).await.unwrap().is_valid());
    /// # });
    /// ```
    pub fn insert_with_zone_id(
        &self,
        id: &str,
        vpc_id: &str,
        availability_zone: &str,
        availability_zone_id: &str,
    ) {
        self.put(
            id,
            vpc_id,
            availability_zone,
            Some(availability_zone_id.to_string()),
        );
    }

    fn put(&self, id: &str, vpc_id: &str, availability_zone: &str, zone_id: Option<String>) {
        self.subnets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id.to_string(),
                SubnetInfo {
                    id: id.to_string(),
                    vpc_id: vpc_id.to_string(),
                    availability_zone: availability_zone.to_string(),
                    availability_zone_id: zone_id,
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
    /// Availability zones that must each have a subnet, by name
    /// (`us-east-1a`) or id (`use1-az1`).
    pub availability_zones: Vec<String>,
    /// Subnet ids chosen for the service, checked together (the union must
    /// cover every zone).
    pub subnet_ids: Vec<String>,
    /// Named subnet lists (one per stack parameter, e.g. the EC2 subnets
    /// and the load-balancer subnets), each checked on its own: every list
    /// must cover every requested zone by itself. An empty list is not
    /// checked (the parameter is not used).
    pub subnet_lists: Vec<SubnetList>,
    /// The VPC every subnet must be in, if known (e.g. the `VpcId` parameter).
    pub vpc_id: Option<String>,
    /// Check only existence and the VPC, not the zones (the template has
    /// no zone parameter).
    pub skip_zone_check: bool,
}

/// One named subnet list of a [`SubnetRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubnetList {
    /// The stack parameter holding the list, e.g. `LoadBalancerSubnets`.
    pub parameter: String,
    /// Its subnet ids.
    pub subnet_ids: Vec<String>,
}

/// A requested zone that one subnet list does not cover by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListZoneGap {
    /// The subnet parameter lacking the zone.
    pub parameter: String,
    /// The zone, as requested.
    pub zone: String,
    /// The other subnet parameters that do have a subnet in the zone (empty
    /// when no list covers it).
    pub covered_by: Vec<String>,
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
    /// Requested zones a named subnet list does not cover by itself.
    pub list_gaps: Vec<ListZoneGap>,
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
                    Some(s) => format!("{id} ({})", s.zone_label()),
                    None => id.clone(),
                })
                .collect();
            problems.push(format!(
                "subnets outside the requested availability zones: {}",
                described.join(", ")
            ));
        }
        for gap in &self.list_gaps {
            problems.push(if gap.covered_by.is_empty() {
                format!(
                    "subnet parameter {} has no subnet in availability zone {}",
                    gap.parameter, gap.zone
                )
            } else {
                format!(
                    "subnet parameter {} has no subnet in availability zone {} (only {} does)",
                    gap.parameter,
                    gap.zone,
                    gap.covered_by.join(", ")
                )
            });
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
/// expected one, if given) and cover every requested availability zone
/// (by name or id); reports zones without a subnet and subnets outside the
/// zones. Each named list of [`SubnetRequest::subnet_lists`] must cover
/// every zone by itself; a zone covered only by another list is reported
/// with that list's name.
pub async fn validate_subnets(
    directory: &dyn SubnetDirectory,
    request: &SubnetRequest,
) -> Result<SubnetReport, Error> {
    let lists: Vec<(String, Vec<String>)> = request
        .subnet_lists
        .iter()
        .map(|l| (l.parameter.clone(), dedup(&l.subnet_ids)))
        .filter(|(_, ids)| !ids.is_empty())
        .collect();
    let all: Vec<String> = request
        .subnet_ids
        .iter()
        .chain(lists.iter().flat_map(|(_, ids)| ids))
        .cloned()
        .collect();
    let ids: Vec<String> = dedup(&all);
    let zones: Vec<String> = if request.skip_zone_check {
        Vec::new()
    } else {
        dedup(&request.availability_zones)
    };
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
    let covers = |list: &[String], zone: &str| {
        list.iter()
            .any(|id| found.get(id).is_some_and(|s| s.in_zone(zone)))
    };
    let zones_without_subnet = zones.iter().filter(|z| !covers(&ids, z)).cloned().collect();
    let subnets_outside_zones = if request.skip_zone_check {
        Vec::new()
    } else {
        ids.iter()
            .filter(|id| {
                found
                    .get(*id)
                    .is_some_and(|s| !zones.iter().any(|z| s.in_zone(z)))
            })
            .cloned()
            .collect()
    };
    let mut list_gaps = Vec::new();
    for (parameter, list) in &lists {
        for zone in &zones {
            if covers(list, zone) {
                continue;
            }
            let covered_by = lists
                .iter()
                .filter(|(other, ids)| other != parameter && covers(ids, zone))
                .map(|(other, _)| other.clone())
                .collect::<Vec<_>>();
            // A zone no list covers is already in `zones_without_subnet`
            // when this is the only list.
            if covered_by.is_empty() && lists.len() == 1 {
                continue;
            }
            list_gaps.push(ListZoneGap {
                parameter: parameter.clone(),
                zone: zone.clone(),
                covered_by,
            });
        }
    }
    Ok(SubnetReport {
        found,
        missing_subnets,
        vpcs,
        subnets_outside_vpc,
        zones_without_subnet,
        subnets_outside_zones,
        list_gaps,
        empty_request: ids.is_empty() || (zones.is_empty() && !request.skip_zone_check),
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

    /// The subnet request described by a full set of parameter values,
    /// every subnet parameter in one list ([`SubnetRequest::subnet_ids`]:
    /// only the union must cover every zone). See
    /// [`request_by_list_from`](Self::request_by_list_from) to check each
    /// subnet parameter on its own, as the updater does.
    pub fn request_from(&self, parameters: &BTreeMap<String, String>) -> SubnetRequest {
        SubnetRequest {
            subnet_ids: self
                .subnets
                .iter()
                .flat_map(|key| split_list(parameters.get(key)))
                .collect(),
            subnet_lists: Vec::new(),
            ..self.request_by_list_from(parameters)
        }
    }

    /// The subnet request described by a full set of parameter values:
    /// one named list per subnet parameter
    /// ([`SubnetRequest::subnet_lists`]), each checked on its own.
    pub fn request_by_list_from(&self, parameters: &BTreeMap<String, String>) -> SubnetRequest {
        SubnetRequest {
            availability_zones: split_list(parameters.get(&self.availability_zones)),
            subnet_ids: Vec::new(),
            subnet_lists: self
                .subnets
                .iter()
                .map(|key| SubnetList {
                    parameter: key.clone(),
                    subnet_ids: split_list(parameters.get(key)),
                })
                .collect(),
            vpc_id: self
                .vpc
                .as_ref()
                .and_then(|key| parameters.get(key))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            skip_zone_check: false,
        }
    }

    /// The configured names a template really declares (`declared` are its
    /// parameter keys), checked before any subnet validation so a template
    /// with other names is reported instead of refusing every change.
    ///
    /// ```
    /// use cfn_stack::AzParameterNames;
    ///
    /// let names = AzParameterNames {
    ///     subnets: vec!["SubnetIds".into(), "LoadBalancerSubnets".into()],
    ///     ..AzParameterNames::default()
    /// };
    /// let declared = names.declared_in(&["SubnetIds".to_string(), "VpcId".to_string()]);
    /// assert_eq!(declared.subnets, vec!["SubnetIds".to_string()]);
    /// assert!(declared.availability_zones.is_none());
    /// let warning = declared.warning().unwrap();
    /// assert!(warning.contains("no availability-zone parameter AvailabilityZones"), "{warning}");
    /// assert!(warning.contains("LoadBalancerSubnets"), "{warning}");
    /// ```
    pub fn declared_in(&self, declared: &[String]) -> DeclaredAzParameters {
        let is_declared = |key: &String| declared.contains(key);
        DeclaredAzParameters {
            availability_zones: Some(self.availability_zones.clone()).filter(is_declared),
            subnets: self
                .subnets
                .iter()
                .filter(|k| is_declared(k))
                .cloned()
                .collect(),
            missing_subnets: self
                .subnets
                .iter()
                .filter(|k| !is_declared(k))
                .cloned()
                .collect(),
            vpc: self.vpc.clone().filter(is_declared),
            configured: self.clone(),
            declared: declared.to_vec(),
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

/// The [`AzParameterNames`] a template declares
/// ([`AzParameterNames::declared_in`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredAzParameters {
    /// The zone parameter, if the template declares it.
    pub availability_zones: Option<String>,
    /// The configured subnet parameters the template declares.
    pub subnets: Vec<String>,
    /// The configured subnet parameters the template does not declare.
    pub missing_subnets: Vec<String>,
    /// The VPC parameter, if configured and declared.
    pub vpc: Option<String>,
    configured: AzParameterNames,
    declared: Vec<String>,
}

impl DeclaredAzParameters {
    /// Whether `key` is a declared zone, subnet or VPC parameter.
    pub fn concerns(&self, key: &str) -> bool {
        self.availability_zones.as_deref() == Some(key)
            || self.subnets.iter().any(|s| s == key)
            || self.vpc.as_deref() == Some(key)
    }

    /// Whether any subnet parameter is declared (else nothing is validated).
    pub fn can_validate(&self) -> bool {
        !self.subnets.is_empty()
    }

    /// The request to validate for these parameter values: the declared
    /// subnet lists, each on its own; without a zone parameter only
    /// existence and the VPC are checked.
    pub fn request_from(&self, parameters: &BTreeMap<String, String>) -> SubnetRequest {
        let mut request = AzParameterNames {
            subnets: self.subnets.clone(),
            vpc: self.vpc.clone(),
            ..self.configured.clone()
        }
        .request_by_list_from(parameters);
        request.skip_zone_check = self.availability_zones.is_none();
        if request.skip_zone_check {
            request.availability_zones.clear();
        }
        request
    }

    /// A sentence saying what is not validated because the template does
    /// not declare a configured name, if any.
    pub fn warning(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.can_validate() {
            parts.push(format!(
                "the template declares none of the configured subnet parameters ({}), so \
                 subnets are not validated; its parameters are: {} (set \
                 StackUpdaterConfig::az_parameters to the template's names)",
                self.configured.subnets.join(", "),
                self.declared.join(", ")
            ));
        } else if !self.missing_subnets.is_empty() {
            parts.push(format!(
                "the template does not declare the subnet parameters {}; only {} are validated",
                self.missing_subnets.join(", "),
                self.subnets.join(", ")
            ));
        }
        if self.availability_zones.is_none() {
            parts.push(format!(
                "the template has no availability-zone parameter {}, so subnets are checked \
                 to exist and share one VPC but not against zones",
                self.configured.availability_zones
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
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
                    ..SubnetRequest::default()
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
                ..SubnetRequest::default()
            }
        );
        assert_eq!(
            names.request_by_list_from(&params),
            SubnetRequest {
                availability_zones: strings(&["a", "b"]),
                subnet_lists: vec![
                    SubnetList {
                        parameter: "PublicSubnets".into(),
                        subnet_ids: strings(&["s1", "s2"]),
                    },
                    SubnetList {
                        parameter: "PrivateSubnets".into(),
                        subnet_ids: strings(&["s3"]),
                    },
                ],
                vpc_id: Some("vpc-1".into()),
                ..SubnetRequest::default()
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
                ..SubnetRequest::default()
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
