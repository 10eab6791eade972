//! `Ec2Subnets`: the [`SubnetDirectory`] backend over `aws-sdk-ec2`.

use async_trait::async_trait;
use aws_sdk_ec2::{Client, types::Filter};

use crate::{Error, SubnetDirectory, SubnetInfo, sdk_error::backend_error};

/// [`SubnetDirectory`] over a ready-built EC2 client (feature `ec2`).
///
/// Looks subnets up with a `subnet-id` filter, so unknown ids are simply
/// absent instead of failing the whole request; paginates.
#[derive(Debug, Clone)]
pub struct Ec2Subnets {
    client: Client,
}

impl Ec2Subnets {
    /// Wraps `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl SubnetDirectory for Ec2Subnets {
    async fn subnets(&self, ids: &[String]) -> Result<Vec<SubnetInfo>, Error> {
        let mut found = Vec::new();
        // DescribeSubnets accepts at most 200 filter values.
        for chunk in ids.chunks(200) {
            let mut token: Option<String> = None;
            loop {
                let output = self
                    .client
                    .describe_subnets()
                    .filters(
                        Filter::builder()
                            .name("subnet-id")
                            .set_values(Some(chunk.to_vec()))
                            .build(),
                    )
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|error| backend_error("DescribeSubnets", &chunk.join(","), error))?;
                for subnet in output.subnets() {
                    if let (Some(id), Some(vpc), Some(zone)) = (
                        subnet.subnet_id(),
                        subnet.vpc_id(),
                        subnet.availability_zone(),
                    ) {
                        found.push(SubnetInfo {
                            id: id.to_string(),
                            vpc_id: vpc.to_string(),
                            availability_zone: zone.to_string(),
                            availability_zone_id: subnet
                                .availability_zone_id()
                                .filter(|id| !id.is_empty())
                                .map(str::to_string),
                        });
                    }
                }
                match output.next_token() {
                    Some(next) if !next.is_empty() => token = Some(next.to_string()),
                    _ => break,
                }
            }
        }
        Ok(found)
    }
}
