//! The sync port's messages (cluster/protocol.rs), both directions: digest,
//! manifest, fetch and push bodies, and the key records they carry
//! (`sync::records_from_message`: the one record codec plus the restored
//! marks).
//! Input: one selector byte, then the JSON body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vssm::cluster::sync::records_from_message;
use vssm::cluster::protocol::{
    DigestResponse, Empty, FetchRequest, ManifestEntry, ManifestResponse, PushResponse, RecordsMessage,
};
use vssm::keystore::KeyType;
use vssm::server::json::parse_json;

/// What the fetch handler reads of an entry before the lookup.
fn entries(entries: &[ManifestEntry]) {
    for entry in entries {
        let _ = KeyType::parse(&entry.key_type);
        let _: Result<[u8; 32], _> = entry.fingerprint.0.as_slice().try_into();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    match selector % 7 {
        // Requests, read by the sync server.
        0 => {
            let _ = parse_json::<Empty>(body);
        }
        1 => {
            if let Ok(request) = parse_json::<FetchRequest>(body) {
                entries(&request.entries);
            }
        }
        2 => {
            if let Ok(request) = parse_json::<RecordsMessage>(body) {
                let _ = records_from_message(request);
            }
        }
        // Answers, read by the peer client.
        3 => {
            let _ = serde_json::from_slice::<DigestResponse>(body);
        }
        4 => {
            if let Ok(answer) = serde_json::from_slice::<ManifestResponse>(body) {
                entries(&answer.entries);
            }
        }
        5 => {
            if let Ok(answer) = serde_json::from_slice::<RecordsMessage>(body) {
                let _ = records_from_message(answer);
            }
        }
        _ => {
            let _ = serde_json::from_slice::<PushResponse>(body);
        }
    }
});
