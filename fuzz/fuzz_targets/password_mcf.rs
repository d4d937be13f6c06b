//! The configured admin password hash, `$s0$PARAMS$SALT$HASH` (scrypt MCF),
//! through `PasswordHash::parse`, the function the config loader calls.
//! Input: the MCF string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vssm::admin::password::PasswordHash;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PasswordHash::parse(text);
    }
});
