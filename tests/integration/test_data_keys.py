"""symmetric/generatedatakey: a fresh AES data key and its form wrapped
under a named key, checked with an independent AES-GCM (Python
`cryptography`) and with the node's own symmetric/decrypt."""
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vssmtest.util import b64d, uniq

GCM = "AES/GCM/NoPadding"


def unwrap_locally(master: bytes, wrapped: bytes, aad: bytes | None = None) -> bytes:
    """nonce(12) || ciphertext || tag(16), as symmetric/encrypt writes AES-GCM."""
    return AESGCM(master).decrypt(wrapped[:12], wrapped[12:], aad)


def test_data_key_is_random_aes_256_wrapped_so_that_decrypt_and_cryptography_unwrap_it(api):
    master, name = os.urandom(32), uniq("dk-master")
    api.inject(name, "SYMMETRIC", master)
    answer = api.op_ok("symmetric/generatedatakey", keyName=name)
    assert set(answer) == {"ciphertext", "plaintext", "keySpec"} and answer["keySpec"] == "AES_256", answer
    data_key, wrapped = b64d(answer["plaintext"]), b64d(answer["ciphertext"])
    assert len(data_key) == 32 and len(wrapped) == 12 + 32 + 16
    assert unwrap_locally(master, wrapped) == data_key
    assert api.out("symmetric/decrypt", keyName=name, algorithm=GCM, input=wrapped) == data_key
    # The data key is an ordinary AES key for the client's own encryption.
    nonce = os.urandom(12)
    sealed = AESGCM(data_key).encrypt(nonce, b"bulk data", None)
    assert AESGCM(data_key).decrypt(nonce, sealed, None) == b"bulk data"
    again = b64d(api.op_ok("symmetric/generatedatakey", keyName=name)["plaintext"])
    assert again != data_key, "every call makes a new key"


def test_wrapped_only_aes_128_and_aad_bound_data_keys(api):
    master, name = os.urandom(16), uniq("dk-master128")
    api.inject(name, "SYMMETRIC", master)
    answer = api.op_ok("symmetric/generatedatakey", keyName=name, keySpec="AES_128", withoutPlaintext=True,
                       aad=b"tenant-7")
    assert "plaintext" not in answer and answer["keySpec"] == "AES_128", answer
    wrapped = b64d(answer["ciphertext"])
    data_key = unwrap_locally(master, wrapped, b"tenant-7")
    assert len(data_key) == 16
    assert api.out("symmetric/decrypt", keyName=name, algorithm=GCM, input=wrapped, aad=b"tenant-7") == data_key
    refused = api.op("symmetric/decrypt", keyName=name, algorithm=GCM, input=wrapped, aad=b"tenant-8")
    assert refused.status == 400, refused


def test_data_key_requests_that_cannot_work_are_refused_with_the_reason(api):
    aes, des = uniq("dk-aes"), uniq("dk-des")
    api.inject(aes, "SYMMETRIC", os.urandom(32))
    api.inject(des, "SYMMETRIC", os.urandom(8))
    bad_spec = api.op("symmetric/generatedatakey", keyName=aes, keySpec="AES_512")
    assert bad_spec.status == 400 and "keySpec must be AES_256 or AES_128" in bad_spec.error(), bad_spec
    assert api.op("symmetric/generatedatakey", keyName=des).status == 400, "GCM needs an AES key"
    assert api.op("symmetric/generatedatakey", keyName=uniq("dk-none")).status == 404
    assert api.op("symmetric/generatedatakey").status == 400, "keyName is required"
