//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`
//! only): each runs parsers that are private to their module on untrusted
//! bytes, the way the node runs them. Not an API; never in the binary.

use crate::cloud::aws_api::{self, AsgInstance, Ec2Instance};
use crate::cloud::http_client::Response;
use crate::cloud::xml;

/// Group and instance ids the AWS readers look for (those of the test fixtures).
const GROUP_NAME: &str = "my-asg";
const INSTANCE_IDS: [&str; 2] = ["i-0123456789abcdef0", "i-0fedcba9876543210"];

/// An AWS query-API answer: the XML reader, then every response reader of
/// `aws_api` on the tree, and the error reader on the raw body (as a 400).
pub fn aws_response(body: &[u8]) {
    if let Ok(root) = xml::parse(body) {
        let (mut groups, mut found) = (Vec::<AsgInstance>::new(), false);
        let _ = aws_api::read_groups_page(&root, GROUP_NAME, &mut groups, &mut found);
        for id in INSTANCE_IDS {
            let _ = aws_api::read_group_of_instance(&root, id);
        }
        let _ = aws_api::read_instances_page(&root, &INSTANCE_IDS, &mut Vec::<Ec2Instance>::new());
        if let Ok(identity) = aws_api::read_caller_identity(&root) {
            let _ = aws_api::assumed_role_session_name(&identity.arn);
        }
    }
    let response = Response {
        status: hyper::StatusCode::BAD_REQUEST,
        headers: Default::default(),
        body: bytes::Bytes::copy_from_slice(body),
    };
    let _ = aws_api::error_from_response(&response);
}

/// The IMDS role-credentials JSON.
pub fn imds_role_credentials(body: &[u8]) {
    let _ = crate::cloud::imds::parse_role_credentials(body);
}

/// The `x-amz-date` header of a joiner's signed STS request.
pub fn amz_date(text: &str) {
    let _ = crate::cluster::aws::parse_amz_date(text);
}
