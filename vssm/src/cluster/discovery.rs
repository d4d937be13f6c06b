//! Finding peers: a static list from the config, or the node's own EC2
//! Auto Scaling group. One interface, so sync and join do not care which.

use super::aws::AwsError;
use crate::config::{ClusterConfig, DiscoveryConfig};
use std::net::IpAddr;
use std::time::Duration;

/// Longest time between two refreshes of the peer list the links follow,
/// whatever `syncIntervalSeconds` says: a peer that left the group stops
/// receiving updates soon after.
pub const MEMBERSHIP_REFRESH: Duration = Duration::from_secs(10);

/// A peer as discovery reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its private address.
    pub ip: IpAddr,
    /// The EC2 instance id, when discovery knows it.
    pub instance_id: Option<String>,
}

/// Why discovery could not be set up or could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// AWS discovery is configured but this instance's identity is unknown.
    #[error("AWS discovery needs the instance identity from IMDS")]
    NoIdentity,
    /// The Auto Scaling group could not be read.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// Where peers come from, and this node's own address (left out).
pub struct Discovery {
    source: Source,
    own_ip: IpAddr,
}

enum Source {
    Static(Vec<IpAddr>),
    Aws(super::aws::AwsDiscovery),
}

impl Discovery {
    /// Discovery as configured; `own_ip` (this node's address as peers
    /// see it) is left out of every answer.
    pub fn new(
        config: &ClusterConfig,
        aws: Option<super::aws::AwsDiscovery>,
        own_ip: IpAddr,
    ) -> Result<Discovery, DiscoveryError> {
        let source = match (&config.discovery, aws) {
            (DiscoveryConfig::Static(ips), _) => Source::Static(ips.clone()),
            (DiscoveryConfig::Aws, Some(aws)) => Source::Aws(aws),
            (DiscoveryConfig::Aws, None) => return Err(DiscoveryError::NoIdentity),
        };
        Ok(Discovery { source, own_ip })
    }

    /// The current peers, without this node.
    pub async fn peers(&self) -> Result<Vec<Peer>, DiscoveryError> {
        let mut peers = match &self.source {
            Source::Static(ips) => ips.iter().map(|ip| Peer { ip: *ip, instance_id: None }).collect(),
            Source::Aws(aws) => aws.members().await?,
        };
        peers.retain(|p| p.ip != self.own_ip);
        Ok(peers)
    }

    /// Whether a joining instance is a current member: in its group and
    /// Pending/InService with this private address (AWS), or listed (static).
    pub async fn is_member(&self, instance_id: &str, ip: IpAddr) -> Result<bool, DiscoveryError> {
        match &self.source {
            Source::Static(ips) => Ok(ips.contains(&ip)),
            Source::Aws(aws) => Ok(aws.is_member(instance_id, ip).await?),
        }
    }

    /// Whether a sync peer at `ip` is a current member: a Pending/InService
    /// instance of the group with this private address, from an answer at
    /// most [`super::aws::MEMBERSHIP_MAX_AGE`] old (AWS), or listed (static).
    pub async fn is_member_ip(&self, ip: IpAddr) -> Result<bool, DiscoveryError> {
        // A node bound to `::` sees IPv4 peers as IPv4-mapped addresses.
        let ip = ip.to_canonical();
        match &self.source {
            Source::Static(ips) => Ok(ips.contains(&ip)),
            Source::Aws(aws) => Ok(aws.is_member_ip(ip).await?),
        }
    }
}
