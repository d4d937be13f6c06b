//! The module against a real `vssm dev` node, loaded through `cryptoki`
//! (and through its raw function list where exact return values matter).
//!
//! Needs the vssm binary next to the test binary (`cargo build -p vssm`) or
//! `VSSM_BIN`; run with `cargo test -p vssm-pkcs11`.

mod common;

use common::{node, raw, serial};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use cryptoki_sys::*;
use std::time::{Duration, Instant};

fn init() -> Pkcs11 {
    let p = Pkcs11::new(common::module_path()).unwrap();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).unwrap();
    p
}

fn plain_config() {
    let n = node();
    n.use_config("plain.json", &n.config(&[n.api()], &n.dir.join("client.key"), ""));
}

fn session(p: &Pkcs11) -> Session {
    let slot = p.get_slots_with_token().unwrap()[0];
    let s = p.open_rw_session(slot).unwrap();
    match s.login(UserType::User, Some(&AuthPin::new("any".into()))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login: {e}"),
    }
    s
}

fn rv(e: CkError) -> RvError {
    match e {
        CkError::Pkcs11(rv, _) => rv,
        other => panic!("not a PKCS#11 error: {other}"),
    }
}

fn unique(prefix: &str) -> String {
    let mut r = [0u8; 4];
    vssm_pkcs11::random(&mut r).unwrap();
    format!("{prefix}-{}", r.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn gen_pair(s: &Session, mech: Mechanism, public: Vec<Attribute>, label: &str) -> (ObjectHandle, ObjectHandle) {
    let mut public = public;
    public.push(Attribute::Token(true));
    let private = vec![Attribute::Label(label.as_bytes().to_vec()), Attribute::Sign(true)];
    s.generate_key_pair(&mech, &public, &private).unwrap()
}

fn bytes_attr(s: &Session, o: ObjectHandle, t: AttributeType) -> Vec<u8> {
    match s.get_attributes(o, &[t]).unwrap().pop() {
        Some(Attribute::Modulus(v))
        | Some(Attribute::PublicExponent(v))
        | Some(Attribute::EcPoint(v))
        | Some(Attribute::EcParams(v))
        | Some(Attribute::PublicKeyInfo(v))
        | Some(Attribute::Id(v))
        | Some(Attribute::Label(v)) => v,
        other => panic!("{t:?}: {other:?}"),
    }
}

/// The raw point from CKA_EC_POINT (a DER OCTET STRING).
fn ec_point(s: &Session, o: ObjectHandle) -> Vec<u8> {
    let der = bytes_attr(s, o, AttributeType::EcPoint);
    assert_eq!(der[0], 0x04, "OCTET STRING");
    let (len, start) = if der[1] & 0x80 == 0 { (der[1] as usize, 2) } else { (der[2] as usize, 3) };
    assert_eq!(der.len(), start + len);
    der[start..].to_vec()
}

#[test]
fn slot_token_mechanisms_and_finalize() {
    let _g = serial();
    plain_config();
    let p = init();
    let slots = p.get_slots_with_token().unwrap();
    assert_eq!(slots.len(), 1);
    let info = p.get_token_info(slots[0]).unwrap();
    assert_eq!(info.label(), "VSSM test");
    assert_eq!(info.manufacturer_id(), "VSSM");
    assert!(info.login_required() && info.token_initialized() && info.user_pin_initialized());
    let mechs = p.get_mechanism_list(slots[0]).unwrap();
    for m in [MechanismType::RSA_PKCS, MechanismType::ECDSA, MechanismType::AES_GCM, MechanismType::SHA256_HMAC] {
        assert!(mechs.contains(&m), "{m}");
        assert!(p.get_mechanism_info(slots[0], m).unwrap().hardware());
    }
    // Re-initialization after finalize, in the same process.
    p.finalize().unwrap();
    let p = init();
    let s = session(&p);
    s.generate_random_vec(0).unwrap();
    assert_eq!(s.generate_random_vec(32).unwrap().len(), 32);
    s.seed_random(b"ignored").unwrap();
    drop(s);
    p.finalize().unwrap();
}

#[test]
fn encrypted_key_pin_is_checked_locally_and_dead_nodes_fail_fast() {
    let _g = serial();
    let n = node();
    let key = n.encrypted_key("s3cret");
    // Every node down: slot, token, wrong-PIN login need no network.
    n.use_config("dead.json", &n.config(&["127.0.0.1:9".into(), "127.0.0.1:10".into()], &key, ""));
    let p = init();
    let slot = p.get_slots_with_token().unwrap()[0];
    assert_eq!(p.get_token_info(slot).unwrap().label(), "VSSM test");
    let s = p.open_rw_session(slot).unwrap();
    let wrong = s.login(UserType::User, Some(&AuthPin::new("wrong".into()))).unwrap_err();
    assert_eq!(rv(wrong), RvError::PinIncorrect);
    s.login(UserType::User, Some(&AuthPin::new("s3cret".into()))).unwrap();
    let start = Instant::now();
    let e = s.find_objects(&[]).unwrap_err();
    assert_eq!(rv(e), RvError::DeviceError);
    assert!(start.elapsed() < Duration::from_secs(10));
    drop(s);
    p.finalize().unwrap();

    // Live node, encrypted key: nothing before login, keys after.
    n.use_config("encrypted.json", &n.config(&[n.api()], &key, ""));
    let p = init();
    let slot = p.get_slots_with_token().unwrap()[0];
    let s = p.open_rw_session(slot).unwrap();
    assert!(s.find_objects(&[]).unwrap().is_empty());
    s.login(UserType::User, Some(&AuthPin::new("s3cret".into()))).unwrap();
    let label = unique("enc-aes");
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[Attribute::Label(label.clone().into_bytes()), Attribute::ValueLen(32.into()), Attribute::Token(true)],
    )
    .unwrap();
    assert_eq!(s.find_objects(&[Attribute::Label(label.into_bytes())]).unwrap().len(), 1);
    drop(s);
    p.finalize().unwrap();
}

#[test]
fn failover_to_the_next_node() {
    let _g = serial();
    let n = node();
    // A first node that refuses connections: the second answers.
    n.use_config("failover.json", &n.config(&["127.0.0.1:9".into(), n.api()], &n.dir.join("client.key"), ""));
    let p = init();
    let s = session(&p);
    let start = Instant::now();
    s.find_objects(&[]).unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    drop(s);
    p.finalize().unwrap();
}

#[test]
fn rsa_sign_verify_decrypt() {
    let _g = serial();
    plain_config();
    let p = init();
    let s = session(&p);
    let label = unique("rsa");
    let (public, private) = gen_pair(
        &s,
        Mechanism::RsaPkcsKeyPairGen,
        vec![Attribute::ModulusBits(2048.into()), Attribute::PublicExponent(vec![1, 0, 1])],
        &label,
    );
    let n = bytes_attr(&s, public, AttributeType::Modulus);
    let e = bytes_attr(&s, public, AttributeType::PublicExponent);
    assert_eq!(n.len(), 256);
    assert_eq!(bytes_attr(&s, private, AttributeType::Modulus), n, "public values on the private object too");
    assert_eq!(bytes_attr(&s, private, AttributeType::Id), label.as_bytes());
    let key = ring::signature::RsaPublicKeyComponents { n: &n, e: &e };
    let data = vec![0x5au8; 1500];

    let sig = s.sign(&Mechanism::Sha256RsaPkcs, private, &data).unwrap();
    key.verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &data, &sig).unwrap();
    s.verify(&Mechanism::Sha256RsaPkcs, public, &data, &sig).unwrap();
    let mut bad = sig.clone();
    bad[10] ^= 1;
    assert_eq!(rv(s.verify(&Mechanism::Sha256RsaPkcs, public, &data, &bad).unwrap_err()), RvError::SignatureInvalid);

    // CKM_RSA_PKCS over a DigestInfo.
    let digest = ring::digest::digest(&ring::digest::SHA384, &data);
    let mut info = vec![
        0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04,
        0x30,
    ];
    info.extend_from_slice(digest.as_ref());
    let sig = s.sign(&Mechanism::RsaPkcs, private, &info).unwrap();
    key.verify(&ring::signature::RSA_PKCS1_2048_8192_SHA384, &data, &sig).unwrap();
    assert_eq!(rv(s.sign(&Mechanism::RsaPkcs, private, b"not a digest info").unwrap_err()), RvError::DataInvalid);

    // PSS, hashing and digest input.
    let pss = PkcsPssParams { hash_alg: MechanismType::SHA256, mgf: PkcsMgfType::MGF1_SHA256, s_len: 32.into() };
    let sig = s.sign(&Mechanism::Sha256RsaPkcsPss(pss), private, &data).unwrap();
    key.verify(&ring::signature::RSA_PSS_2048_8192_SHA256, &data, &sig).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &data);
    let sig = s.sign(&Mechanism::RsaPkcsPss(pss), private, digest.as_ref()).unwrap();
    key.verify(&ring::signature::RSA_PSS_2048_8192_SHA256, &data, &sig).unwrap();
    let bad_pss = PkcsPssParams { s_len: 20.into(), ..pss };
    assert_eq!(rv(s.sign_init(&Mechanism::RsaPkcsPss(bad_pss), private).unwrap_err()), RvError::MechanismParamInvalid);

    // Multi-part.
    s.sign_init(&Mechanism::Sha512RsaPkcs, private).unwrap();
    s.sign_update(&data[..700]).unwrap();
    s.sign_update(&data[700..]).unwrap();
    let sig = s.sign_final().unwrap();
    key.verify(&ring::signature::RSA_PKCS1_2048_8192_SHA512, &data, &sig).unwrap();

    // Encrypt/decrypt: PKCS#1 v1.5 and OAEP SHA-1, SHA-256.
    for mech in [
        Mechanism::RsaPkcs,
        Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
            MechanismType::SHA1,
            PkcsMgfType::MGF1_SHA1,
            PkcsOaepSource::empty(),
        )),
        Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
            MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA256,
            PkcsOaepSource::empty(),
        )),
    ] {
        let ct = s.encrypt(&mech, public, b"secret seal key").unwrap();
        assert_eq!(ct.len(), 256);
        assert_eq!(s.decrypt(&mech, private, &ct).unwrap(), b"secret seal key");
    }
    let labeled = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA1,
        PkcsMgfType::MGF1_SHA1,
        PkcsOaepSource::data_specified(b"label"),
    ));
    assert_eq!(rv(s.decrypt_init(&labeled, private).unwrap_err()), RvError::MechanismParamInvalid);
    assert_eq!(rv(s.sign_init(&Mechanism::Sha224RsaPkcs, private).unwrap_err()), RvError::MechanismInvalid);
    drop(s);
    p.finalize().unwrap();
}

#[test]
fn ec_and_ed25519_sign_verify() {
    let _g = serial();
    plain_config();
    let p = init();
    let s = session(&p);
    let data = b"message to sign".repeat(100);
    for (oid, bits, mech, alg) in [
        (
            vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            256,
            Mechanism::EcdsaSha256,
            &ring::signature::ECDSA_P256_SHA256_FIXED,
        ),
        (
            vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
            384,
            Mechanism::EcdsaSha384,
            &ring::signature::ECDSA_P384_SHA384_FIXED,
        ),
    ] {
        let label = unique("ec");
        let (public, private) = gen_pair(&s, Mechanism::EccKeyPairGen, vec![Attribute::EcParams(oid.clone())], &label);
        assert_eq!(bytes_attr(&s, private, AttributeType::EcParams), oid);
        let point = ec_point(&s, public);
        let key = ring::signature::UnparsedPublicKey::new(alg, &point);
        let sig = s.sign(&mech, private, &data).unwrap();
        assert_eq!(sig.len(), 2 * bits / 8);
        key.verify(&data, &sig).unwrap();
        s.verify(&mech, public, &data, &sig).unwrap();
        // CKM_ECDSA over a digest.
        let hash = if bits == 256 { &ring::digest::SHA256 } else { &ring::digest::SHA384 };
        let digest = ring::digest::digest(hash, &data);
        let sig = s.sign(&Mechanism::Ecdsa, private, digest.as_ref()).unwrap();
        key.verify(&data, &sig).unwrap();
        s.verify(&Mechanism::Ecdsa, public, digest.as_ref(), &sig).unwrap();
        assert_eq!(rv(s.sign(&Mechanism::Ecdsa, private, &[1u8; 17]).unwrap_err()), RvError::DataLenRange);
    }

    let label = unique("ed");
    let (public, private) = gen_pair(
        &s,
        Mechanism::EccEdwardsKeyPairGen,
        vec![Attribute::EcParams(vec![0x06, 0x03, 0x2b, 0x65, 0x70])],
        &label,
    );
    let point = ec_point(&s, public);
    assert_eq!(point.len(), 32);
    let mech = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
    let sig = s.sign(&mech, private, &data).unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &point).verify(&data, &sig).unwrap();
    s.verify(&mech, public, &data, &sig).unwrap();
    drop(s);
    p.finalize().unwrap();
}

#[test]
fn hmac_and_attributes() {
    let _g = serial();
    plain_config();
    let p = init();
    let s = session(&p);
    let label = unique("mac");
    let key = s
        .generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[Attribute::Label(label.clone().into_bytes()), Attribute::ValueLen(32.into()), Attribute::Token(true)],
        )
        .unwrap();
    let mac = s.sign(&Mechanism::Sha256Hmac, key, b"data").unwrap();
    assert_eq!(mac.len(), 32);
    s.verify(&Mechanism::Sha256Hmac, key, b"data", &mac).unwrap();
    assert_eq!(rv(s.verify(&Mechanism::Sha256Hmac, key, b"datA", &mac).unwrap_err()), RvError::SignatureInvalid);
    let mac512 = s.sign(&Mechanism::Sha512Hmac, key, b"data").unwrap();
    assert_eq!(mac512.len(), 64);

    // A label used by a key of another type is refused.
    let clash = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::Label(label.clone().into_bytes()), Attribute::ValueLen(16.into())],
        )
        .unwrap_err();
    assert_eq!(rv(clash), RvError::AttributeValueInvalid);

    // Narrowed searches give one object.
    let found = s
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Label(label.clone().into_bytes()),
        ])
        .unwrap();
    assert_eq!(found, vec![key]);

    // Partly failing attribute reads, raw: CKA_VALUE sensitive, the others filled.
    let f = raw();
    let mut class: CK_OBJECT_CLASS = 0;
    let mut value = [0u8; 64];
    let mut sensitive: CK_BBOOL = 0;
    let mut label_buf = [0u8; 1];
    let mut template = [
        CK_ATTRIBUTE { type_: CKA_CLASS, pValue: &mut class as *mut _ as *mut _, ulValueLen: 8 },
        CK_ATTRIBUTE { type_: CKA_VALUE, pValue: value.as_mut_ptr() as *mut _, ulValueLen: 64 },
        CK_ATTRIBUTE { type_: CKA_SENSITIVE, pValue: &mut sensitive as *mut _ as *mut _, ulValueLen: 1 },
        CK_ATTRIBUTE { type_: CKA_LABEL, pValue: label_buf.as_mut_ptr() as *mut _, ulValueLen: 1 },
        CK_ATTRIBUTE { type_: 0x7fff_fff0, pValue: std::ptr::null_mut(), ulValueLen: 0 },
    ];
    // SAFETY: a valid session, object and template.
    let r = unsafe { f.C_GetAttributeValue.unwrap()(s.handle(), key.handle(), template.as_mut_ptr(), 5) };
    assert_eq!(r, CKR_ATTRIBUTE_SENSITIVE);
    assert_eq!(class, CKO_SECRET_KEY);
    assert_eq!(template[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(sensitive, CK_TRUE);
    assert_eq!(template[3].ulValueLen, CK_UNAVAILABLE_INFORMATION, "label buffer too small");
    assert_eq!(template[4].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    // Size query of the label.
    template[3].pValue = std::ptr::null_mut();
    // SAFETY: as above.
    let r = unsafe { f.C_GetAttributeValue.unwrap()(s.handle(), key.handle(), template[3..].as_mut_ptr(), 1) };
    assert_eq!(r, CKR_OK);
    assert_eq!(template[3].ulValueLen as usize, label.len());
    drop(s);
    p.finalize().unwrap();
}

#[test]
fn size_queries_and_buffer_too_small_keep_the_operation() {
    let _g = serial();
    plain_config();
    let p = init();
    let s = session(&p);
    let label = unique("ec-size");
    let (_, private) = gen_pair(
        &s,
        Mechanism::EccKeyPairGen,
        vec![Attribute::EcParams(vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07])],
        &label,
    );
    let f = raw();
    let mut mech = CK_MECHANISM { mechanism: CKM_ECDSA_SHA256, pParameter: std::ptr::null_mut(), ulParameterLen: 0 };
    let mut data = *b"abc";
    // SAFETY: valid arguments throughout.
    unsafe {
        assert_eq!(f.C_SignInit.unwrap()(s.handle(), &mut mech, private.handle()), CKR_OK);
        let mut len: CK_ULONG = 0;
        assert_eq!(f.C_Sign.unwrap()(s.handle(), data.as_mut_ptr(), 3, std::ptr::null_mut(), &mut len), CKR_OK);
        assert_eq!(len, 64);
        let mut out = [0u8; 64];
        len = 10;
        assert_eq!(
            f.C_Sign.unwrap()(s.handle(), data.as_mut_ptr(), 3, out.as_mut_ptr(), &mut len),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(len, 64);
        len = 64;
        assert_eq!(f.C_Sign.unwrap()(s.handle(), data.as_mut_ptr(), 3, out.as_mut_ptr(), &mut len), CKR_OK);
        assert_eq!(len, 64);
        // The operation is over.
        assert_eq!(
            f.C_Sign.unwrap()(s.handle(), data.as_mut_ptr(), 3, out.as_mut_ptr(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        // Unsupported mechanism at init.
        let mut md5 = CK_MECHANISM { mechanism: CKM_MD5_RSA_PKCS, pParameter: std::ptr::null_mut(), ulParameterLen: 0 };
        assert_eq!(f.C_SignInit.unwrap()(s.handle(), &mut md5, private.handle()), CKR_MECHANISM_INVALID);
    }
    drop(s);
    p.finalize().unwrap();
}

/// Whether the node takes a caller IV on symmetric/encrypt.
fn node_takes_iv(name: &str) -> bool {
    let body = serde_json::json!({"keyName": name, "algorithm": "AES/CBC/NoPadding", "input": "AAAAAAAAAAAAAAAAAAAAAA==", "iv": "AAAAAAAAAAAAAAAAAAAAAA=="});
    node().call("symmetric/encrypt", body).is_ok()
}

#[test]
fn aes_modes_match_reference_implementations() {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use base64::Engine;
    use cipher::{BlockEncryptMut, KeyIvInit, StreamCipher};
    let _g = serial();
    plain_config();
    let n = node();
    let name = unique("aes-known");
    let key_bytes = [0x42u8; 32];
    n.call(
        "admin/injectkey",
        serde_json::json!({"adminPassword": n.admin_password, "keyName": name, "keyType": "SYMMETRIC",
                           "key": base64::engine::general_purpose::STANDARD.encode(key_bytes)}),
    )
    .unwrap();
    let p = init();
    let s = session(&p);
    let key = s.find_objects(&[Attribute::Label(name.clone().into_bytes())]).unwrap()[0];
    let pt: Vec<u8> = (0..64u8).collect();

    // ECB, no IV.
    let ct = s.encrypt(&Mechanism::AesEcb, key, &pt).unwrap();
    let mut reference = pt.clone();
    let mut ecb = ecb::Encryptor::<aes::Aes256>::new((&key_bytes).into());
    for block in reference.chunks_mut(16) {
        ecb.encrypt_block_mut(block.into());
    }
    assert_eq!(ct, reference);
    assert_eq!(s.decrypt(&Mechanism::AesEcb, key, &ct).unwrap(), pt);

    if !node_takes_iv(&name) {
        eprintln!("SKIP: the node does not take a caller IV yet (symmetric/encrypt \"iv\"): CBC, CTR, GCM not checked");
        drop(s);
        p.finalize().unwrap();
        return;
    }
    let iv = [7u8; 16];
    let ct = s.encrypt(&Mechanism::AesCbc(iv), key, &pt).unwrap();
    let reference = cbc::Encryptor::<aes::Aes256>::new((&key_bytes).into(), (&iv).into())
        .encrypt_padded_vec_mut::<cipher::block_padding::NoPadding>(&pt);
    assert_eq!(ct, reference);
    assert_eq!(s.decrypt(&Mechanism::AesCbc(iv), key, &ct).unwrap(), pt);

    let odd = &pt[..37];
    let ct = s.encrypt(&Mechanism::AesCbcPad(iv), key, odd).unwrap();
    let reference = cbc::Encryptor::<aes::Aes256>::new((&key_bytes).into(), (&iv).into())
        .encrypt_padded_vec_mut::<cipher::block_padding::Pkcs7>(odd);
    assert_eq!(ct, reference);
    assert_eq!(s.decrypt(&Mechanism::AesCbcPad(iv), key, &ct).unwrap(), odd);

    // CTR through the raw API (cryptoki 0.12 has no CTR mechanism), counter block near a 64-bit wrap.
    let mut cb = [0u8; 16];
    cb[8..].copy_from_slice(&[0xff; 8]);
    let mut reference = odd.to_vec();
    ctr::Ctr128BE::<aes::Aes256>::new((&key_bytes).into(), (&cb).into()).apply_keystream(&mut reference);
    let mut params = CK_AES_CTR_PARAMS { ulCounterBits: 128, cb };
    let mut mech = CK_MECHANISM {
        mechanism: CKM_AES_CTR,
        pParameter: &mut params as *mut _ as *mut _,
        ulParameterLen: std::mem::size_of::<CK_AES_CTR_PARAMS>() as CK_ULONG,
    };
    let f = raw();
    let mut out = vec![0u8; 64];
    let mut len: CK_ULONG = 64;
    let mut input = odd.to_vec();
    // SAFETY: valid arguments.
    unsafe {
        assert_eq!(f.C_EncryptInit.unwrap()(s.handle(), &mut mech, key.handle()), CKR_OK);
        assert_eq!(
            f.C_Encrypt.unwrap()(s.handle(), input.as_mut_ptr(), input.len() as CK_ULONG, out.as_mut_ptr(), &mut len),
            CKR_OK
        );
    }
    assert_eq!(&out[..len as usize], &reference[..]);

    // GCM with the caller's nonce and AAD.
    let mut nonce = [9u8; 12];
    let aad = b"header";
    let ct = s.encrypt(&Mechanism::AesGcm(GcmParams::new(&mut nonce, aad, 128.into()).unwrap()), key, odd).unwrap();
    let reference =
        aes_gcm::Aes256Gcm::new((&key_bytes).into()).encrypt((&nonce).into(), Payload { msg: odd, aad }).unwrap();
    assert_eq!(ct, reference);
    let back = s.decrypt(&Mechanism::AesGcm(GcmParams::new(&mut nonce, aad, 128.into()).unwrap()), key, &ct).unwrap();
    assert_eq!(back, odd);
    let mut tampered = ct.clone();
    tampered[0] ^= 1;
    let e = s
        .decrypt(&Mechanism::AesGcm(GcmParams::new(&mut nonce, aad, 128.into()).unwrap()), key, &tampered)
        .unwrap_err();
    assert_eq!(rv(e), RvError::EncryptedDataInvalid);
    let e = s.encrypt_init(&Mechanism::AesGcm(GcmParams::new(&mut nonce, aad, 96.into()).unwrap()), key).unwrap_err();
    assert_eq!(rv(e), RvError::MechanismParamInvalid);
    drop(s);
    p.finalize().unwrap();
}

#[test]
fn sixteen_threads_sign_at_once() {
    let _g = serial();
    plain_config();
    let p = init();
    let s = session(&p);
    let label = unique("ec-threads");
    let (public, private) = gen_pair(
        &s,
        Mechanism::EccKeyPairGen,
        vec![Attribute::EcParams(vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07])],
        &label,
    );
    let point = ec_point(&s, public);
    let slot = p.get_slots_with_token().unwrap()[0];
    std::thread::scope(|scope| {
        for t in 0..16u8 {
            let (p, point) = (&p, &point);
            scope.spawn(move || {
                let s = p.open_ro_session(slot).unwrap();
                for i in 0..20u8 {
                    let data = [t, i, 1, 2, 3];
                    let sig = s.sign(&Mechanism::EcdsaSha256, private, &data).unwrap();
                    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
                        .verify(&data, &sig)
                        .unwrap();
                }
            });
        }
    });
    drop(s);
    p.finalize().unwrap();
}

#[test]
fn a_forked_child_initializes_again() {
    let _g = serial();
    plain_config();
    let p = init();
    let s = session(&p);
    let label = unique("ec-fork");
    let (_, private) = gen_pair(
        &s,
        Mechanism::EccKeyPairGen,
        vec![Attribute::EcParams(vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07])],
        &label,
    );
    s.sign(&Mechanism::EcdsaSha256, private, b"parent").unwrap();
    let f = raw();
    // SAFETY: the child only calls the module's functions and _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // The child: the parent's state counts as not initialized; C_Initialize works.
        let code = (|| -> Result<(), String> {
            // SAFETY: valid arguments to the module's functions.
            unsafe {
                let mut handle: CK_SESSION_HANDLE = 0;
                let r = f.C_OpenSession.unwrap()(0, CKF_SERIAL_SESSION, std::ptr::null_mut(), None, &mut handle);
                if r != CKR_CRYPTOKI_NOT_INITIALIZED {
                    return Err(format!("open before init: {r:#x}"));
                }
                let r = f.C_Initialize.unwrap()(std::ptr::null_mut());
                if r != CKR_OK {
                    return Err(format!("init: {r:#x}"));
                }
                let r = f.C_OpenSession.unwrap()(0, CKF_SERIAL_SESSION, std::ptr::null_mut(), None, &mut handle);
                if r != CKR_OK {
                    return Err(format!("open: {r:#x}"));
                }
                let mut pin = *b"x";
                let r = f.C_Login.unwrap()(handle, CKU_USER, pin.as_mut_ptr(), 1);
                if r != CKR_OK {
                    return Err(format!("login: {r:#x}"));
                }
                let mut label_bytes = label.clone().into_bytes();
                let mut class = CKO_PRIVATE_KEY;
                let mut template = [
                    CK_ATTRIBUTE {
                        type_: CKA_LABEL,
                        pValue: label_bytes.as_mut_ptr() as *mut _,
                        ulValueLen: label_bytes.len() as CK_ULONG,
                    },
                    CK_ATTRIBUTE { type_: CKA_CLASS, pValue: &mut class as *mut _ as *mut _, ulValueLen: 8 },
                ];
                f.C_FindObjectsInit.unwrap()(handle, template.as_mut_ptr(), 2);
                let mut key: CK_OBJECT_HANDLE = 0;
                let mut found: CK_ULONG = 0;
                f.C_FindObjects.unwrap()(handle, &mut key, 1, &mut found);
                f.C_FindObjectsFinal.unwrap()(handle);
                if found != 1 {
                    return Err("key not found".into());
                }
                let mut mech =
                    CK_MECHANISM { mechanism: CKM_ECDSA_SHA256, pParameter: std::ptr::null_mut(), ulParameterLen: 0 };
                f.C_SignInit.unwrap()(handle, &mut mech, key);
                let mut data = *b"child";
                let mut sig = [0u8; 64];
                let mut len: CK_ULONG = 64;
                let r = f.C_Sign.unwrap()(handle, data.as_mut_ptr(), 5, sig.as_mut_ptr(), &mut len);
                if r != CKR_OK {
                    return Err(format!("sign: {r:#x}"));
                }
                f.C_Finalize.unwrap()(std::ptr::null_mut());
            }
            Ok(())
        })();
        if let Err(e) = &code {
            eprintln!("child: {e}");
        }
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if code.is_ok() { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child failed: {status}");
    // The parent goes on with its own state and connections.
    s.sign(&Mechanism::EcdsaSha256, private, b"parent again").unwrap();
    drop(s);
    p.finalize().unwrap();
}

#[test]
fn a_node_that_never_answers_times_out_and_the_next_is_used() {
    let _g = serial();
    let n = node();
    // Accepts connections and never answers (no TLS handshake).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = listener.local_addr().unwrap().to_string();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&held);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    n.use_config("silent.json", &n.config(std::slice::from_ref(&silent), &n.dir.join("client.key"), ""));
    let p = init();
    let s = session(&p);
    let start = Instant::now();
    assert_eq!(rv(s.find_objects(&[]).unwrap_err()), RvError::DeviceError);
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(8), "{took:?}");
    drop(s);
    p.finalize().unwrap();

    n.use_config("silent-then-live.json", &n.config(&[silent, n.api()], &n.dir.join("client.key"), ""));
    let p = init();
    let s = session(&p);
    let start = Instant::now();
    s.find_objects(&[]).unwrap();
    assert!(start.elapsed() < Duration::from_secs(8));
    // The live node is preferred from now on.
    let start = Instant::now();
    s.find_objects(&[]).unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
    drop(s);
    p.finalize().unwrap();
}

/// A CKA_ID given at generation (Vault sets its own) is kept by the node:
/// after C_Finalize and a new C_Initialize, as for another process, the
/// key pair is found by that CKA_ID, one object per class, and the node
/// reports it as the key's objectId.
#[test]
fn a_cka_id_given_at_generation_is_kept_by_the_node() {
    let _g = serial();
    plain_config();
    let p = init();
    let s = session(&p);
    let label = unique("ec-id");
    let id = vec![0x00, 0xff, 0x10, 0x42];
    let public = vec![
        Attribute::Token(true),
        Attribute::Id(id.clone()),
        Attribute::EcParams(vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
    ];
    let private = vec![Attribute::Label(label.as_bytes().to_vec()), Attribute::Id(id.clone()), Attribute::Sign(true)];
    s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private).unwrap();
    drop(s);
    p.finalize().unwrap();

    let p = init();
    let s = session(&p);
    let private = s.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Id(id.clone())]).unwrap();
    assert_eq!(private.len(), 1, "one private key with that CKA_ID");
    assert_eq!(bytes_attr(&s, private[0], AttributeType::Label), label.as_bytes());
    assert_eq!(bytes_attr(&s, private[0], AttributeType::Id), id);
    let public = s.find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Id(id.clone())]).unwrap();
    assert_eq!(public.len(), 1);
    let listed = node().call("keys/publickey", serde_json::json!({"keyName": label})).unwrap();
    let object_id = listed["objectId"].as_str().expect("the node reports the objectId");
    assert_eq!(vssm_pkcs11::api::b64decode(object_id).unwrap(), id);
    drop(s);
    p.finalize().unwrap();
}

#[test]
fn destroy_schedules_the_deletion() {
    let _g = serial();
    plain_config();
    let p = init();
    let s = session(&p);
    let label = unique("aes-destroy");
    let key = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::Label(label.clone().into_bytes()), Attribute::ValueLen(16.into())],
        )
        .unwrap();
    s.destroy_object(key).unwrap();
    let described =
        node().call("keys/describe", serde_json::json!({"keyType": "SYMMETRIC", "keyName": label})).unwrap();
    assert_eq!(described["state"], "PENDING_DELETION");
    drop(s);
    p.finalize().unwrap();
}

/// Module versus JSON API signing rate, 16 threads (ignored by default:
/// `cargo test -p vssm-pkcs11 --release --test module -- --ignored throughput --nocapture`).
#[test]
#[ignore]
fn throughput_module_versus_api() {
    use base64::Engine;
    let _g = serial();
    plain_config();
    let n = node();
    let p = init();
    let s = session(&p);
    let label = unique("ec-bench");
    let (_, private) = gen_pair(
        &s,
        Mechanism::EccKeyPairGen,
        vec![Attribute::EcParams(vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07])],
        &label,
    );
    let slot = p.get_slots_with_token().unwrap()[0];
    let seconds = 3;
    let run = |f: &(dyn Fn() + Sync)| {
        let count = std::sync::atomic::AtomicU64::new(0);
        let end = Instant::now() + Duration::from_secs(seconds);
        std::thread::scope(|scope| {
            for _ in 0..16 {
                scope.spawn(|| {
                    while Instant::now() < end {
                        f();
                        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
        count.into_inner() as f64 / seconds as f64
    };
    thread_local!(static SESSION: std::cell::RefCell<Option<Session>> = const { std::cell::RefCell::new(None) });
    let module_rate = run(&|| {
        SESSION.with(|cell| {
            let mut cell = cell.borrow_mut();
            let s = cell.get_or_insert_with(|| p.open_ro_session(slot).unwrap());
            s.sign(&Mechanism::EcdsaSha256, private, b"benchmark input").unwrap();
        })
    });
    SESSION.with(|cell| cell.borrow_mut().take());
    let config = vssm_pkcs11::config::Config::parse(&n.config(&[n.api()], &n.dir.join("client.key"), "")).unwrap();
    let identity = vssm_pkcs11::identity::Identity::load(&config).unwrap();
    let client = vssm_pkcs11::client::Client::new(identity.tls(b"").unwrap(), &config.nodes, config.timeout());
    let input = base64::engine::general_purpose::STANDARD.encode(b"benchmark input");
    let api_rate = run(&|| {
        let body = serde_json::json!({"keyName": label, "algorithm": "SHA256withECDSA", "input": input});
        client.post("asymmetric/sign", &body, true).unwrap();
    });
    eprintln!(
        "ECDSA P-256 signing, 16 threads: module {module_rate:.0}/s, JSON API {api_rate:.0}/s ({:.0}%)",
        100.0 * module_rate / api_rate
    );
    drop(s);
    p.finalize().unwrap();
}
