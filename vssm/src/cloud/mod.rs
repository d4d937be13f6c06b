//! Cloud integration, hand-written (no AWS SDK): a tiny HTTP/1.1 client,
//! IMDSv2, SigV4 signing, the few query-API calls the cluster needs (Auto
//! Scaling, EC2, STS), and verification of AWS instance identity documents.

pub mod aws_api;
pub mod aws_identity;
pub mod credentials;
pub mod http_client;
pub mod imds;
pub mod sigv4;
pub mod xml;

#[cfg(test)]
pub(crate) mod test_server;
