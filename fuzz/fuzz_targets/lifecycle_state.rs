//! Key lifecycle state from a peer's push or a version-2 backup
//! (lifecycle.rs): every entry validated, and what is accepted must survive
//! the wire unchanged and merge idempotently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vssm::lifecycle::LifecycleMap;
use vssm::wire::lifecycle::KeyLifecycleWire;

fuzz_target!(|data: &[u8]| {
    let Ok(wire) = serde_json::from_slice::<Vec<KeyLifecycleWire>>(data) else { return };
    let Ok(map) = LifecycleMap::from_wire(&wire, "lifecycle") else { return };
    let again = LifecycleMap::from_wire(&map.to_wire(), "lifecycle").expect("accepted state re-reads");
    assert_eq!(again, map);
    let mut merged = map.clone();
    assert!(merged.merge(&map).is_empty());
    assert_eq!(merged.digest(), map.digest());
});
