//! The join port's messages (cluster/protocol.rs): the join request a
//! stranger sends (with its strong-mode STS request: URL, Authorization
//! header, x-amz-date) and, on the joiner's side, the peer's challenge and
//! sealed RPC key.
//! Input: one selector byte, then the JSON body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vssm::cloud::http_client::Url;
use vssm::cluster::config_digest::ConfigDigest;
use vssm::cluster::join::policy::bound_headers;
use vssm::cluster::join::seal::{ephemeral_key, open_from};
use vssm::cluster::protocol::{ChallengeResponse, Empty, JoinRequest, JoinResponse};
use vssm::server::json::parse_json;

fn join_request(body: &[u8]) {
    let Ok(request) = parse_json::<JoinRequest>(body) else { return };
    let digest = request.config_digest.as_ref().and_then(|d| ConfigDigest::from_slice(&d.0));
    if let Some(digest) = &digest {
        let _ = bound_headers(&request.challenge.0, &request.ephemeral_public_key.0, digest);
    }
    if let Some(sts) = &request.sts_request {
        let _ = Url::parse(&sts.url);
        let _ = sts.authorization();
        if let Some(date) = sts.header("x-amz-date") {
            vssm::fuzz_api::amz_date(date);
        }
    }
}

fn join_response(body: &[u8]) {
    let Ok(answer) = serde_json::from_slice::<JoinResponse>(body) else { return };
    let Ok((private, public)) = ephemeral_key() else { return };
    let _ =
        open_from(private, &public, &answer.ephemeral_public_key.0, b"challenge", b"aad", &answer.encrypted_rpc_key.0);
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    match selector % 4 {
        0 => join_request(body),
        1 => join_response(body),
        2 => {
            let _ = serde_json::from_slice::<ChallengeResponse>(body);
        }
        _ => {
            let _ = parse_json::<Empty>(body);
        }
    }
});
