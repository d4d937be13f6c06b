//! AWS query-API answers (Auto Scaling, EC2, STS): the XML reader and the
//! readers of every response `aws_api` interprets, plus its error reader.
//! Input: the response body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vssm::fuzz_api::aws_response(data);
});
