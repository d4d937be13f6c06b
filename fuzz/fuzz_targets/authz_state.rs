//! The authorization state from a peer's push or a version-2 backup
//! (authz/state.rs): every record validated, and what is accepted must
//! survive the wire unchanged and merge idempotently. Also the selectors of
//! a creategrants request. Input: one selector byte, then the JSON or text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vssm::authz::selector::{IdentitySelector, KeySelector};
use vssm::authz::AuthzState;
use vssm::wire::authz::AuthorizationStateWire;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    if selector % 2 == 0 {
        let Ok(wire) = serde_json::from_slice::<AuthorizationStateWire>(body) else { return };
        let Ok(state) = AuthzState::from_wire(&wire, "authorization") else { return };
        let again = AuthzState::from_wire(&state.to_wire(), "authorization").expect("accepted state re-reads");
        assert_eq!(again, state);
        let mut merged = state.clone();
        assert!(merged.merge(&state).is_empty());
        assert_eq!(merged.digest(), state.digest());
    } else if let Ok(text) = std::str::from_utf8(body) {
        // A selector that parses keeps its meaning in its canonical spelling.
        if let Ok(identity) = IdentitySelector::parse(text) {
            assert_eq!(IdentitySelector::parse(&identity.to_string()).as_ref(), Ok(&identity));
        }
        if let Ok(keys) = KeySelector::parse(text) {
            assert_eq!(KeySelector::parse(&keys.to_string()).as_ref(), Ok(&keys));
        }
    }
});
