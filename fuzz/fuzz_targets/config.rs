//! The node configuration as user-data from IMDS (`Config::parse`): JSON,
//! PEM certificates, the client trust store, the password hash, the cluster
//! settings.
//! Input: the user-data bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vssm::config::Config::parse(data, "user-data");
});
