//! DHCP replies as vssm-init (PID 1) reads them off the wire: the reply
//! parser, the lease it makes and the resolv.conf written from it.
//! Input: the UDP payload.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use vssm_init::net::dhcp::{parse_options, parse_reply};

/// Transaction id and hardware address of the seeds (the unit tests' values).
const XID: u32 = 0xdead_beef;
const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

fuzz_target!(|data: &[u8]| {
    let _ = parse_options(data);
    let Ok(reply) = parse_reply(data, XID, &MAC) else { return };
    if let Some(lease) = reply.into_lease(Instant::now()) {
        let _ = lease.netmask();
        // The lease keeper's deadlines.
        if let (Some(t1), Some(t2), Some(total)) = (lease.t1, lease.t2, lease.lease_time) {
            let _ = (lease.obtained + t1, lease.obtained + t2, lease.obtained + total);
        }
        let _ = vssm_init::net::resolv_conf(&lease.dns, lease.domain.as_deref());
    }
});
