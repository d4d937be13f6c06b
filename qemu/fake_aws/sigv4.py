"""SigV4 verification (independent implementation, per the AWS General
Reference), stricter than AWS in one point: X-Amz-Security-Token must be
signed. Presigned URLs (query auth) are not supported."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import posixpath
import re
import string
import urllib.parse

from .common import ApiError, parse_iso

MAX_SKEW = 15 * 60  # SigV4: signing time must be within 15 minutes

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-_.~")


def uri_encode(s: str, encode_slash: bool = True) -> str:
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        if c in _UNRESERVED or (c == "/" and not encode_slash):
            out.append(c)
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def canonical_uri(raw_path: str) -> str:
    """Non-S3 services: normalized path, each segment URI-encoded again (the
    path as received is already encoded once, so this is the double encoding)."""
    if not raw_path:
        return "/"
    norm = posixpath.normpath(raw_path)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if raw_path.endswith("/") and norm != "/":
        norm += "/"
    return "/".join(uri_encode(seg) for seg in norm.split("/"))


def canonical_query(raw_query: str) -> str:
    pairs = []
    if raw_query:
        for part in raw_query.split("&"):
            if not part:
                continue
            k, _, v = part.partition("=")
            pairs.append((uri_encode(urllib.parse.unquote(k)), uri_encode(urllib.parse.unquote(v))))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_header_value(values: list[str]) -> str:
    return ",".join(" ".join(v.strip().split()) for v in values)


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    k = hmac.new(k, region.encode(), hashlib.sha256).digest()
    k = hmac.new(k, service.encode(), hashlib.sha256).digest()
    return hmac.new(k, b"aws4_request", hashlib.sha256).digest()


def sigv4_canonical(method: str, raw_path: str, raw_query: str, header_lookup, signed: list[str],
                    body: bytes) -> str:
    lines = [method, canonical_uri(raw_path), canonical_query(raw_query)]
    hdrs = "".join(f"{h}:{canonical_header_value(header_lookup(h))}\n" for h in signed)
    return "\n".join(lines) + "\n" + hdrs + "\n" + ";".join(signed) + "\n" + hashlib.sha256(body).hexdigest()


def host_service_region(host: str | None) -> tuple[str | None, str | None]:
    """From a real-looking endpoint host, the service and region it implies."""
    if not host:
        return None, None
    h = host.split(":")[0].lower()
    if h == "sts.amazonaws.com":
        return "sts", "us-east-1"
    m = re.fullmatch(r"(autoscaling|ec2|sts)\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?", h)
    if m:
        return m.group(1), m.group(2)
    return None, None


def verify(find_credentials, service: str, method: str, raw_path: str, raw_query: str, headers,
           body: bytes, host_region: str | None) -> tuple[dict, dict, str]:
    """Checks the request's Authorization against the credentials that
    `find_credentials(access_key_id)` returns as (instance, credentials), or
    (None, None). Returns (instance, credentials, region) or raises ApiError."""
    ec2 = service == "ec2"

    def deny_key(msg="The security token included in the request is invalid."):
        if ec2:
            return ApiError(401, "AuthFailure", "AWS was not able to validate the provided access credentials")
        return ApiError(403, "InvalidClientTokenId", msg)

    auth = headers.get("Authorization")
    if auth is None:
        if ec2:
            raise ApiError(401, "MissingAuthenticationToken", "Request is missing Authentication Token")
        raise ApiError(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
    scheme, _, rest = auth.strip().partition(" ")
    if scheme != "AWS4-HMAC-SHA256":
        raise ApiError(400, "IncompleteSignature", f"Unsupported AWS 'algorithm': '{scheme}'")
    comps = {}
    for part in rest.split(","):
        k, eq, v = part.strip().partition("=")
        if eq:
            comps[k] = v
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in comps]
    if missing:
        raise ApiError(400, "IncompleteSignature",
                       f"Authorization header requires {', '.join(missing)} parameter(s). Authorization={auth}")
    cred = comps["Credential"].split("/")
    if len(cred) != 5:
        raise ApiError(400, "IncompleteSignature", f"Credential is malformed: {comps['Credential']}")
    akid, sdate, sregion, sservice, term = cred
    inst, creds = find_credentials(akid)
    if inst is None:
        raise deny_key()
    tok = headers.get("X-Amz-Security-Token")
    if tok is None or not hmac.compare_digest(tok.strip().encode(), creds["Token"].encode()):
        raise deny_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    if parse_iso(creds["Expiration"]) <= now:
        raise ApiError(400 if not ec2 else 400, "ExpiredToken",
                       "The security token included in the request is expired")
    signed = comps["SignedHeaders"].split(";")
    if signed != sorted(set(h.lower() for h in signed)):
        raise ApiError(403, "SignatureDoesNotMatch",
                       "SignedHeaders must be lower-case, sorted and unique: " + comps["SignedHeaders"])
    if "host" not in signed:
        raise ApiError(403, "SignatureDoesNotMatch",
                       "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    if "x-amz-security-token" not in signed:
        raise ApiError(403, "SignatureDoesNotMatch",
                       "fake_aws requires 'x-amz-security-token' to be a SignedHeader")
    for h in signed:
        if headers.get_all(h) is None:
            raise ApiError(403, "SignatureDoesNotMatch", f"Signed header '{h}' is missing from the request")
    amz_date = headers.get("X-Amz-Date")
    if amz_date is None:
        raise ApiError(400, "IncompleteSignature",
                       "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if "x-amz-date" not in signed:
        raise ApiError(403, "SignatureDoesNotMatch", "'x-amz-date' must be a SignedHeader")
    amz_date = amz_date.strip()
    try:
        t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        raise ApiError(400, "IncompleteSignature", f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'.")
    if term != "aws4_request":
        raise ApiError(403, "SignatureDoesNotMatch",
                       f"Credential should be scoped with a valid terminator: 'aws4_request', not '{term}'.")
    if sdate != amz_date[:8]:
        raise ApiError(403, "SignatureDoesNotMatch",
                       f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{sdate}' != '{amz_date[:8]}', from '{amz_date}'.")
    if sservice != service:
        raise ApiError(403, "SignatureDoesNotMatch",
                       f"Credential should be scoped to correct service: '{service}'.")
    if host_region is not None and sregion != host_region:
        raise ApiError(403, "SignatureDoesNotMatch",
                       f"Credential should be scoped to a valid region, not '{sregion}'.")
    if not sregion:
        raise ApiError(403, "SignatureDoesNotMatch", "Credential should be scoped to a valid region.")
    skew = (t - now).total_seconds()
    fmt = lambda d: d.strftime("%Y%m%dT%H%M%SZ")
    if skew < -MAX_SKEW or skew > MAX_SKEW:
        if ec2:
            raise ApiError(400, "RequestExpired", f"Request has expired. Timestamp date is {amz_date}")
        if skew < 0:
            msg = (f"Signature expired: {amz_date} is now earlier than "
                   f"{fmt(now - datetime.timedelta(seconds=MAX_SKEW))} ({fmt(now)} - 15 min.)")
        else:
            msg = (f"Signature not yet current: {amz_date} is still later than "
                   f"{fmt(now + datetime.timedelta(seconds=MAX_SKEW))} ({fmt(now)} + 15 min.)")
        raise ApiError(403, "SignatureDoesNotMatch", msg)
    creq = sigv4_canonical(method, raw_path, raw_query, lambda h: headers.get_all(h) or [], signed, body)
    scope = f"{sdate}/{sregion}/{sservice}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    expect = hmac.new(signing_key(creds["SecretAccessKey"], sdate, sregion, sservice),
                      sts.encode(), hashlib.sha256).hexdigest()
    debug = {"canonicalRequest": creq, "stringToSign": sts}
    if not hmac.compare_digest(expect, comps["Signature"].strip().lower()):
        raise ApiError(403, "SignatureDoesNotMatch",
                       "The request signature we calculated does not match the signature you provided. "
                       "Check your AWS Secret Access Key and signing method. Consult the service "
                       "documentation for details.\n\nThe Canonical String for this request should have been\n'"
                       + creq + "'\n\nThe String-to-Sign should have been\n'" + sts + "'\n", debug=debug)
    return inst, creds, sregion
