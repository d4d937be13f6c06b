//! A backup's content once decrypted (admin/backup.rs): the proto3-JSON
//! inventory and the validation of every key in it, as `backup::open` does;
//! and the outer backup blob of admin/restorebackup.
//! Input: one selector byte, then the JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vssm::admin::backup::records_from_wire;
use vssm::wire::{BackupBlob, BackupInventory};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    if selector % 2 == 0 {
        if let Ok(inventory) = serde_json::from_slice::<BackupInventory>(body) {
            let _ = records_from_wire(inventory);
        }
    } else {
        let _ = vssm::server::json::parse_json::<BackupBlob>(body);
    }
});
