//! HMAC create/verify (AWS-LC).
//!
//! The keyed HMAC state (the padded key's inner and outer hash states, as
//! good as the key) is made once per key and algorithm and kept with the
//! key ([`MacKey::hmac_key`]); AWS-LC wipes it when the key is dropped
//! (`HMAC_CTX_cleanup` is `OPENSSL_cleanse`, crypto/fipsmodule/hmac/hmac.c).

use aws_lc_rs::hmac;

use super::algorithm::MacAlgorithm;
use super::keys::MacKey;

/// Computes the full-length HMAC tag of `input`.
pub fn create(alg: &MacAlgorithm, key: &MacKey, input: &[u8]) -> Vec<u8> {
    hmac::sign(key.hmac_key(alg), input).as_ref().to_vec()
}

/// Checks `tag` in constant time. Only the full-length tag is accepted: a
/// truncated tag would let a client weaken the check at will.
pub fn verify(alg: &MacAlgorithm, key: &MacKey, input: &[u8], tag: &[u8]) -> bool {
    hmac::verify(key.hmac_key(alg), input, tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_util::hex;

    fn mk(k: &[u8]) -> MacKey {
        MacKey::from_bytes(k).unwrap()
    }

    #[test]
    fn rfc4231_and_rfc2202_vectors() {
        let k1 = mk(&[0x0b; 20]);
        let jefe = mk(b"Jefe");
        let d2 = b"what do ya want for nothing?";
        let cases: [(MacAlgorithm, &MacKey, &[u8], &str); 8] = [
            (MacAlgorithm::Sha1, &k1, b"Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"),
            (MacAlgorithm::Sha1, &jefe, d2, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
            (MacAlgorithm::Sha256, &k1, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (MacAlgorithm::Sha256, &jefe, d2, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            (MacAlgorithm::Sha384, &k1, b"Hi There", "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"),
            (MacAlgorithm::Sha384, &jefe, d2, "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"),
            (MacAlgorithm::Sha512, &k1, b"Hi There", "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"),
            (MacAlgorithm::Sha512, &jefe, d2, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
        ];
        // Twice: the second round uses the keyed states the first one made
        // (one per key and algorithm, so a wrong table index shows here).
        for (alg, key, data, want) in cases.iter().chain(cases.iter()) {
            let tag = create(alg, key, data);
            assert_eq!(tag, hex(want), "{alg:?}");
            assert_eq!(tag.len(), alg.output_len());
            assert!(verify(alg, key, data, &tag));
        }
        // RFC 4231 test case 6: key longer than the block size.
        let big = mk(&[0xaa; 131]);
        assert_eq!(
            create(&MacAlgorithm::Sha256, &big, b"Test Using Larger Than Block-Size Key - Hash Key First"),
            hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        );
    }

    #[test]
    fn verify_rejects_wrong_truncated_and_extended_tags() {
        let k = MacKey::generate(32).unwrap();
        for alg in [MacAlgorithm::Sha1, MacAlgorithm::Sha256, MacAlgorithm::Sha384, MacAlgorithm::Sha512] {
            let tag = create(&alg, &k, b"msg");
            assert!(verify(&alg, &k, b"msg", &tag));
            assert!(!verify(&alg, &k, b"msg2", &tag));
            assert!(!verify(&alg, &k, b"msg", &tag[..tag.len() - 1]));
            assert!(!verify(&alg, &k, b"msg", &tag[..16]));
            assert!(!verify(&alg, &k, b"msg", &[]));
            let mut longer = tag.clone();
            longer.push(0);
            assert!(!verify(&alg, &k, b"msg", &longer));
            let mut flipped = tag.clone();
            flipped[0] ^= 0x80;
            assert!(!verify(&alg, &k, b"msg", &flipped));
            let other = MacKey::generate(32).unwrap();
            assert!(!verify(&alg, &other, b"msg", &tag));
        }
    }
}
