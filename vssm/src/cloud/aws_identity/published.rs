//! AWS's published RSA-2048 instance-identity certificates, compiled in.
//!
//! These verify the `/latest/dynamic/instance-identity/rsa2048` signature. AWS
//! lists them per region on "AWS public certificates for instance identity
//! document signatures" (docs.aws.amazon.com/AWSEC2/latest/UserGuide/regions-certs.html).
//! That page could not be fetched here; each PEM below was copied verbatim from
//! public sources that transcribe it, then checked: parses, RSA-2048, subject
//! "C=US, ST=Washington State, L=Seattle, O=Amazon Web Services LLC", self-signature
//! verifies, and the first 8 bytes of its DER SHA-256 are recorded in the table.
//!
//! Sources:
//! - ap-southeast-2: shared/testdata/aws-iid (verifies a real ap-southeast-2 rsa2048 blob);
//!   identical copy in the Go table below.
//! - all nine regions: a public Go source file (package `awsprov`, map `awsCerts`,
//!   "rsa2048" IMDS verifier) found through the code search index.
//! - us-east-1: identical copy (and the same DER SHA-256) in a public Python module
//!   pinned "from the us-east-1 / RSA-2048 section of" the AWS page above.
//! - us-west-2: identical copy in gravitational/teleport `lib/auth/ec2_join.go`.
//!
//! Regions without an entry (e.g. us-east-2, eu-west-2, newer opt-in regions)
//! need their certificate added from the AWS page, or a node config that names
//! the certificate explicitly (see `TrustedSigners::add`).

/// (region, PEM, hex of the first 8 bytes of the DER SHA-256) per compiled-in certificate.
pub(crate) const AWS_RSA2048_CERTS: &[(&str, &str, &str)] = &[
    (
        "ap-northeast-1",
        include_str!("../aws_certs/ap-northeast-1.pem"),
        "b325c09f762291bf",
    ),
    (
        "ap-southeast-1",
        include_str!("../aws_certs/ap-southeast-1.pem"),
        "df7aad409dad94ff",
    ),
    (
        "ap-southeast-2",
        include_str!("../aws_certs/ap-southeast-2.pem"),
        "3c2fa3fa70c80bc6",
    ),
    (
        "eu-central-1",
        include_str!("../aws_certs/eu-central-1.pem"),
        "40e59f0c3924d32f",
    ),
    (
        "eu-west-1",
        include_str!("../aws_certs/eu-west-1.pem"),
        "7963eae83b58ab14",
    ),
    (
        "sa-east-1",
        include_str!("../aws_certs/sa-east-1.pem"),
        "940ffcb9b2e5d1ef",
    ),
    (
        "us-east-1",
        include_str!("../aws_certs/us-east-1.pem"),
        "70923c22dd074172",
    ),
    (
        "us-west-1",
        include_str!("../aws_certs/us-west-1.pem"),
        "abdc625e6600af52",
    ),
    (
        "us-west-2",
        include_str!("../aws_certs/us-west-2.pem"),
        "4e3569f2925a867a",
    ),
];
