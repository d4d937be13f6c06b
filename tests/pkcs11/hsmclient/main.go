// Command hsmclient drives libvssm_pkcs11.so through github.com/miekg/pkcs11
// (Debian's golang-github-miekg-pkcs11-dev) the way two Go HSM clients do:
//
//	hsmclient bankvaults MODULE TOKEN PIN KEYLABEL
//	  Bank-Vaults' HSM unseal (pkg/kv/hsm): the token by label, a user
//	  login, the key pair by label (an RSA-2048 pair generated when the
//	  public key is missing), then RSA-OAEP SHA-1 encrypt with the public
//	  key and decrypt with the private key. miekg's Encrypt and Decrypt use
//	  the size-query convention (a NULL buffer first, then the real call).
//	hsmclient openbao MODULE TOKEN PIN KEYLABEL
//	  OpenBao's PKCS#11 seal: the AES key by a label-only search (an AES-256
//	  key generated when missing), AES-GCM with the seal's own random 12-byte
//	  nonce and a 128-bit tag, then decrypt.
//
// It prints one JSON object (hex fields) for the test to check against the
// node's API, and exits non-zero with a message on any failure.
//
// Build: GO111MODULE=off GOPATH=/usr/share/gocode go build.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/miekg/pkcs11"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "hsmclient: "+format+"\n", args...)
	os.Exit(1)
}

func must(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

// open loads the module, finds the slot whose token has `label`, opens a
// R/W session and logs the user in, as Bank-Vaults does.
func open(module, label, pin string) (*pkcs11.Ctx, pkcs11.SessionHandle) {
	p := pkcs11.New(module)
	if p == nil {
		fail("cannot load %s", module)
	}
	must(p.Initialize(), "C_Initialize")
	slots, err := p.GetSlotList(true)
	must(err, "C_GetSlotList")
	for _, slot := range slots {
		info, err := p.GetTokenInfo(slot)
		must(err, "C_GetTokenInfo")
		if info.Label != label {
			continue
		}
		session, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		must(err, "C_OpenSession")
		must(p.Login(session, pkcs11.CKU_USER, pin), "C_Login")
		return p, session
	}
	fail("no token labelled %q among %d slots", label, len(slots))
	return nil, 0
}

func find(p *pkcs11.Ctx, s pkcs11.SessionHandle, template []*pkcs11.Attribute) []pkcs11.ObjectHandle {
	must(p.FindObjectsInit(s, template), "C_FindObjectsInit")
	objects, _, err := p.FindObjects(s, 10)
	must(err, "C_FindObjects")
	must(p.FindObjectsFinal(s), "C_FindObjectsFinal")
	return objects
}

func one(p *pkcs11.Ctx, s pkcs11.SessionHandle, class uint, label string) (pkcs11.ObjectHandle, bool) {
	objects := find(p, s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	})
	switch len(objects) {
	case 0:
		return 0, false
	case 1:
		return objects[0], true
	}
	fail("%d objects of class %d labelled %q", len(objects), class, label)
	return 0, false
}

func bankVaults(p *pkcs11.Ctx, s pkcs11.SessionHandle, label string) map[string]interface{} {
	generated := false
	pub, found := one(p, s, pkcs11.CKO_PUBLIC_KEY, label)
	var priv pkcs11.ObjectHandle
	if !found {
		publicTemplate := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, 2048),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		}
		privateTemplate := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		}
		var err error
		pub, priv, err = p.GenerateKeyPair(s,
			[]*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)},
			publicTemplate, privateTemplate)
		must(err, "C_GenerateKeyPair")
		generated = true
	} else {
		priv, found = one(p, s, pkcs11.CKO_PRIVATE_KEY, label)
		if !found {
			fail("public key %q without its private key", label)
		}
	}
	attrs, err := p.GetAttributeValue(s, pub, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
	})
	must(err, "C_GetAttributeValue")

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	oaep := func() []*pkcs11.Mechanism {
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP,
			pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil))}
	}
	must(p.EncryptInit(s, oaep(), pub), "C_EncryptInit")
	ciphertext, err := p.Encrypt(s, secret)
	must(err, "C_Encrypt")
	must(p.DecryptInit(s, oaep(), priv), "C_DecryptInit")
	plaintext, err := p.Decrypt(s, ciphertext)
	must(err, "C_Decrypt")
	if !bytes.Equal(plaintext, secret) {
		fail("OAEP round trip: got %x", plaintext)
	}
	return map[string]interface{}{
		"generated":  generated,
		"modulus":    hex.EncodeToString(attrs[0].Value),
		"exponent":   hex.EncodeToString(attrs[1].Value),
		"plaintext":  hex.EncodeToString(secret),
		"ciphertext": hex.EncodeToString(ciphertext),
	}
}

func openBao(p *pkcs11.Ctx, s pkcs11.SessionHandle, label string) map[string]interface{} {
	generated := false
	// The seal's search: the label only.
	objects := find(p, s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)})
	var key pkcs11.ObjectHandle
	switch len(objects) {
	case 0:
		var err error
		key, err = p.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
				pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
			})
		must(err, "C_GenerateKey")
		generated = true
		again := find(p, s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)})
		if len(again) != 1 || again[0] != key {
			fail("label-only search after generation: %v, want [%d]", again, key)
		}
	case 1:
		key = objects[0]
	default:
		fail("label-only search for %q found %d objects", label, len(objects))
	}

	plaintext := []byte("OpenBao root key share: " + hex.EncodeToString(make([]byte, 16)))
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	params := pkcs11.NewGCMParams(nonce, nil, 128)
	must(p.EncryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, key),
		"C_EncryptInit AES-GCM")
	ciphertext, err := p.Encrypt(s, plaintext)
	must(err, "C_Encrypt AES-GCM")
	used := params.IV()
	params.Free()
	if !bytes.Equal(used, nonce) {
		fail("the module changed the nonce: %x, gave %x", used, nonce)
	}
	if len(ciphertext) != len(plaintext)+16 {
		fail("AES-GCM output is %d bytes for %d of input", len(ciphertext), len(plaintext))
	}
	params = pkcs11.NewGCMParams(nonce, nil, 128)
	must(p.DecryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, key),
		"C_DecryptInit AES-GCM")
	decrypted, err := p.Decrypt(s, ciphertext)
	params.Free()
	must(err, "C_Decrypt AES-GCM")
	if !bytes.Equal(decrypted, plaintext) {
		fail("AES-GCM round trip: got %q", decrypted)
	}
	return map[string]interface{}{
		"generated":  generated,
		"nonce":      hex.EncodeToString(nonce),
		"plaintext":  hex.EncodeToString(plaintext),
		"ciphertext": hex.EncodeToString(ciphertext),
	}
}

func main() {
	if len(os.Args) != 6 {
		fail("usage: hsmclient bankvaults|openbao MODULE TOKEN PIN KEYLABEL")
	}
	p, s := open(os.Args[2], os.Args[3], os.Args[4])
	var out map[string]interface{}
	switch os.Args[1] {
	case "bankvaults":
		out = bankVaults(p, s, os.Args[5])
	case "openbao":
		out = openBao(p, s, os.Args[5])
	default:
		fail("unknown client %q", os.Args[1])
	}
	must(p.Logout(s), "C_Logout")
	must(p.CloseSession(s), "C_CloseSession")
	must(p.Finalize(), "C_Finalize")
	p.Destroy()
	must(json.NewEncoder(os.Stdout).Encode(out), "output")
}
