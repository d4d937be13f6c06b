//! Cloud integration, hand-written (no AWS SDK): a tiny HTTP/1.1 client,
//! IMDSv2, SigV4 signing, the few query-API calls the cluster needs (Auto
//! Scaling, EC2, STS), and verification of AWS instance identity documents.

/// Auto Scaling, EC2 and STS query-API calls.
pub mod aws_api;
/// Verification of EC2 instance identity documents.
pub mod aws_identity;
/// AWS access keys with zeroized secrets.
pub mod credentials;
/// One-request HTTP/1.1 client with timeouts and size limits.
pub mod http_client;
/// IMDSv2 client.
pub mod imds;
/// AWS Signature Version 4.
pub mod sigv4;
/// XML reader for AWS responses.
pub mod xml;

#[cfg(test)]
pub(crate) mod test_server;
