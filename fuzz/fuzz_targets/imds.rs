//! IMDS answers: the role-credentials JSON and the role name.
//! Input: the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vssm::fuzz_api::imds_role_credentials(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = vssm::cloud::imds::valid_role_name(text.lines().next().unwrap_or("").trim());
    }
});
