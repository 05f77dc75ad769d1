"""Signed JWTs for the SASL/OAUTHBEARER scenarios (sec-oauth; KIP-255 with KIP-768's broker-side
validation against a JWKS), made at every broker start next to the TLS certificates with the
openssl CLI (no Python dependency): an EC P-256 key (ES256, kid compat-es256) and an RSA 2048 key
(RS256, kid compat-rs256) whose public halves are the JWKS file the broker reads
(sasl.oauthbearer.jwks.endpoint.url=file://...), a third EC key that is not in the JWKS, and one
pre-minted compact JWS per case in <workdir>/oauth/<case>.jwt. Drivers read the token files
(COMPAT_SECURITY oauth_tokens); nothing here runs in a driver."""

import base64
import json
import os
import subprocess
import time

AUDIENCE = "strom-compat"
ISSUER = "https://issuer.strom-compat.test"
SUBJECT = "alice"
SCOPE = "kafka"
KID_ES256, KID_RS256 = "compat-es256", "compat-rs256"

# case -> (alg, key, claim overrides). "bad-signature" is signed by a key that is not in the JWKS
# but names the ES256 key's kid; "unsigned" is alg "none" with an empty signature (RFC 7519 6.1).
CASES = {
    "valid": ("ES256", "es256", {}),
    "valid-rs256": ("RS256", "rs256", {}),
    "expired": ("ES256", "es256", {"iat": -7200, "exp": -3600}),
    "wrong-audience": ("ES256", "es256", {"aud": "some-other-audience"}),
    "bad-signature": ("ES256", "other", {}),
    "unsigned": ("none", None, {}),
}


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _openssl(*args, cwd, data=None):
    r = subprocess.run(["openssl", *args], cwd=cwd, input=data, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {(r.stderr or r.stdout).decode(errors='replace').strip()[-300:]}")
    return r.stdout


def _der_len(buf, i):
    n = buf[i]
    if n < 0x80:
        return n, i + 1
    k = n & 0x7F
    return int.from_bytes(buf[i + 1:i + 1 + k], "big"), i + 1 + k


def _ecdsa_raw(der, size=32):
    """openssl's DER ECDSA-Sig-Value (SEQUENCE of INTEGER r, s) as JWS's fixed-size r || s."""
    assert der[0] == 0x30
    _, i = _der_len(der, 1)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n, i = _der_len(der, i + 1)
        out += int.from_bytes(der[i:i + n], "big").to_bytes(size, "big")
        i += n
    return out


def _sign(alg, key_path, signing_input, cwd):
    if alg == "none":
        return b""
    der = _openssl("dgst", "-sha256", "-sign", key_path, cwd=cwd, data=signing_input)
    return _ecdsa_raw(der) if alg == "ES256" else der  # RS256: PKCS#1 v1.5 as is


def mint(alg, kid, key_path, claims, cwd):
    header = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing_input = (b64u(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + b64u(json.dumps(claims, separators=(",", ":")).encode())).encode()
    return signing_input.decode() + "." + b64u(_sign(alg, key_path, signing_input, cwd))


def make_oauth(workdir):
    """Keys, <workdir>/oauth/jwks.json and one token file per case. Returns
    {"jwks": path, "tokens": {case: path}, "exp": {case: epoch seconds}}."""
    d = os.path.join(workdir, "oauth")
    os.makedirs(d, exist_ok=True)
    keys = {n: os.path.join(d, f"{n}-key.pem") for n in ("es256", "rs256", "other")}
    for n in ("es256", "other"):  # unencrypted PKCS#8 PEM
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keys[n], cwd=d)
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", keys["rs256"], cwd=d)
    spki = _openssl("pkey", "-in", keys["es256"], "-pubout", "-outform", "DER", cwd=d)
    point = spki[-65:]  # the uncompressed point 04 || x || y ends the SubjectPublicKeyInfo
    assert point[0] == 4
    modulus = _openssl("rsa", "-in", keys["rs256"], "-noout", "-modulus", cwd=d).decode().strip().split("=", 1)[1]
    jwks = {"keys": [
        {"kty": "EC", "crv": "P-256", "kid": KID_ES256, "use": "sig", "alg": "ES256",
         "x": b64u(point[1:33]), "y": b64u(point[33:])},
        {"kty": "RSA", "kid": KID_RS256, "use": "sig", "alg": "RS256",
         "n": b64u(bytes.fromhex(modulus)), "e": "AQAB"},
    ]}
    jwks_path = os.path.join(d, "jwks.json")
    with open(jwks_path, "w") as f:
        json.dump(jwks, f, indent=1)
    now = int(time.time())
    tokens, exps = {}, {}
    for case, (alg, key, over) in CASES.items():
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT, "iat": now, "exp": now + 3600, "scope": SCOPE}
        for k, v in over.items():
            claims[k] = now + v if k in ("iat", "exp") else v
        kid = {"es256": KID_ES256, "other": KID_ES256, "rs256": KID_RS256}.get(key)
        tok = mint(alg, kid, keys.get(key), claims, d)
        tokens[case] = os.path.join(d, f"{case}.jwt")
        exps[case] = claims["exp"]
        with open(tokens[case], "w") as f:
            f.write(tok)
    return {"jwks": jwks_path, "tokens": tokens, "exp": exps}
