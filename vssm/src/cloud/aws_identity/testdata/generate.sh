#!/bin/sh
# Regenerates the test-CA fixtures used by the aws_identity tests (fake IMDS flow).
# Needs the openssl CLI. The outputs are committed; tests do not run this script.
set -eu
cd "$(dirname "$0")"
openssl req -x509 -newkey rsa:2048 -nodes -keyout test-ca.key -out test-ca.pem \
  -days 36500 -subj "/C=US/ST=Washington State/L=Seattle/O=VSSM Test Fake IMDS" -sha256
openssl x509 -in test-ca.pem -outform DER -out test-ca.der
cat > test-ca.document.json <<'DOC'
{
  "accountId" : "123456789012",
  "architecture" : "x86_64",
  "availabilityZone" : "us-east-1a",
  "billingProducts" : null,
  "devpayProductCodes" : null,
  "marketplaceProductCodes" : null,
  "imageId" : "ami-0123456789abcdef0",
  "instanceId" : "i-0123456789abcdef0",
  "instanceType" : "t3.micro",
  "kernelId" : null,
  "pendingTime" : "2026-01-01T00:00:00Z",
  "privateIp" : "fd00::42",
  "ramdiskId" : null,
  "region" : "us-east-1",
  "version" : "2017-09-30"
}
DOC
printf '%s' "$(cat test-ca.document.json)" > test-ca.document.json.tmp && mv test-ca.document.json.tmp test-ca.document.json
# DER, signed attributes (default), no certificates inside.
openssl cms -sign -binary -nodetach -md sha256 -nocerts -outform DER \
  -signer test-ca.pem -inkey test-ca.key -in test-ca.document.json -out test-ca.p7.der
# Same, streamed: BER with indefinite lengths (as AWS emits).
openssl cms -sign -binary -nodetach -md sha256 -nocerts -outform DER -stream \
  -signer test-ca.pem -inkey test-ca.key -in test-ca.document.json -out test-ca.p7.ber
# SHA-1 digest: must be refused.
openssl cms -sign -binary -nodetach -md sha1 -nocerts -outform DER \
  -signer test-ca.pem -inkey test-ca.key -in test-ca.document.json -out test-ca-sha1.p7.der
# No signed attributes: must be refused.
openssl cms -sign -binary -nodetach -md sha256 -nocerts -noattr -outform DER \
  -signer test-ca.pem -inkey test-ca.key -in test-ca.document.json -out test-ca-noattr.p7.der
rm -f test-ca.key
