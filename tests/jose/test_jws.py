"""The compact JWS parser and verifier: interoperability with PyJWT, and one test per attack."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from keyless.errors import InvalidSignature, MalformedToken, UnknownKey, UnsupportedAlgorithm
from keyless.jose import KeySet, PublicKey, Signer, b64url, encode_jwt, parse_compact, verify_signature

RSA = Signer.generate("RS256")
EC = Signer.generate("ES256")


def _segments(header: dict[str, object], payload: dict[str, object] | None = None) -> str:
    return b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload or {"sub": "x"}).encode())


@pytest.mark.parametrize("signer", [RSA, EC], ids=["RS256", "ES256"])
def test_tokens_we_sign_verify_with_pyjwt(signer: Signer) -> None:
    token = encode_jwt({"sub": "abc", "n": 1}, signer)
    assert jwt.decode(token, signer.public_key().key, algorithms=[signer.algorithm]) == {"sub": "abc", "n": 1}
    assert jwt.get_unverified_header(token)["kid"] == signer.kid


@pytest.mark.parametrize("alg", ["RS256", "RS384", "PS256", "PS512"])
def test_pyjwt_rsa_tokens_verify_here(alg: str) -> None:
    key = RSA.public_key()
    private = serialization.load_der_private_key(RSA.private_pkcs8(), password=None)
    token = jwt.encode({"sub": "a"}, private, algorithm=alg, headers={"kid": RSA.kid})  # type: ignore[arg-type]
    assert verify_signature(parse_compact(token), KeySet([key]), algorithms={alg}).kid == RSA.kid


def test_pyjwt_es256_token_verifies_here() -> None:
    private = serialization.load_der_private_key(EC.private_pkcs8(), password=None)
    token = jwt.encode({"sub": "a"}, private, algorithm="ES256", headers={"kid": EC.kid})  # type: ignore[arg-type]
    assert verify_signature(parse_compact(token), KeySet([EC.public_key()]), algorithms={"ES256"})


def test_alg_none_is_refused_before_any_key_lookup() -> None:
    with pytest.raises(UnsupportedAlgorithm):
        parse_compact(_segments({"alg": "none"}) + ".c2ln")
    with pytest.raises(UnsupportedAlgorithm):
        parse_compact(_segments({"alg": "NONE"}) + ".c2ln")


def test_hs256_keyed_with_the_public_key_is_refused() -> None:
    pem = RSA.public_key().key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = _segments({"alg": "HS256", "kid": RSA.kid})
    forged = signing_input + "." + b64url(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())
    with pytest.raises(UnsupportedAlgorithm):
        verify_signature(parse_compact(forged), KeySet([RSA.public_key()]), algorithms={"RS256", "HS256"})


def test_algorithm_outside_the_allow_list_is_refused() -> None:
    token = encode_jwt({"a": 1}, EC)
    with pytest.raises(UnsupportedAlgorithm):
        verify_signature(parse_compact(token), KeySet([EC.public_key()]), algorithms={"RS256"})


def test_key_of_the_wrong_type_cannot_verify() -> None:
    token = encode_jwt({"a": 1}, RSA, headers={"alg": "ES256"})
    with pytest.raises(UnknownKey):
        verify_signature(parse_compact(token), KeySet([RSA.public_key()]), algorithms={"ES256"})


def test_tampered_payload_fails_the_signature() -> None:
    header, _, signature = encode_jwt({"sub": "a"}, RSA).split(".")
    other = b64url(b'{"sub":"b"}')
    tampered = f"{header}.{other}.{signature}"
    with pytest.raises(InvalidSignature):
        verify_signature(parse_compact(tampered), KeySet([RSA.public_key()]), algorithms={"RS256"})


def test_unknown_kid_is_reported_as_such() -> None:
    token = encode_jwt({"a": 1}, RSA, headers={"kid": "nope"})
    with pytest.raises(UnknownKey, match="nope"):
        verify_signature(parse_compact(token), KeySet([RSA.public_key()]), algorithms={"RS256"})


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("a.b.c.d.e", "JWE"),
        (_segments({"alg": "RS256", "enc": "A256GCM"}) + ".c2ln", "JWE"),
        ("onlyone", "three"),
        ("!!.e30.c2ln", "base64url"),
        ("eyJhbGciOiJSUzI1NiJ9=.e30.c2ln", "base64url"),
        (b64url(b"[]") + ".e30.c2ln", "object"),
        (b64url(b"{not json") + ".e30.c2ln", "JSON"),
        (_segments({"alg": "RS256", "crit": ["b64"], "b64": False}) + ".c2ln", "crit"),
        (_segments({"alg": "RS256", "cty": "JWT"}) + ".c2ln", "nested"),
        (_segments({"typ": "JWT"}) + ".c2ln", "alg"),
        (b64url(b'{"alg":"RS256","kid":"a","kid":"b"}') + ".e30.c2ln", "duplicate"),
        (_segments({"alg": "RS256"}) + ".", "signature"),
    ],
)
def test_malformed_tokens_are_refused_with_a_reason(token: str, message: str) -> None:
    with pytest.raises(MalformedToken, match=message):
        parse_compact(token)


def test_oversized_token_and_header_are_refused() -> None:
    with pytest.raises(MalformedToken, match="larger"):
        parse_compact("a" * 20000)
    big_header = _segments({"alg": "RS256", "x5c": ["A" * 9000]}) + ".c2ln"
    with pytest.raises(MalformedToken, match="header is larger"):
        parse_compact(big_header)


def test_header_up_to_8k_is_accepted_for_certificate_chains() -> None:
    token = encode_jwt({"a": 1}, RSA, headers={"x5c": ["A" * 5000]})
    assert parse_compact(token).header["x5c"]


def test_embedded_jwk_header_is_never_used_as_the_key() -> None:
    attacker = Signer.generate("RS256")
    token = encode_jwt({"a": 1}, attacker, headers={"kid": RSA.kid, "jwk": attacker.public_key().to_jwk()})
    with pytest.raises(InvalidSignature):
        verify_signature(parse_compact(token), KeySet([RSA.public_key()]), algorithms={"RS256"})


def test_jwks_import_skips_unusable_keys_and_keeps_at_most_100() -> None:
    good = RSA.public_key().to_jwk()
    jwks = {
        "keys": [{"kty": "oct", "k": "c2VjcmV0"}, {"kty": "RSA", "n": "!!"}, good]
        + [dict(good, kid=str(i)) for i in range(150)]
    }
    keys = KeySet.from_jwks(jwks)
    assert len(keys) == 98
    assert keys.has_kid(RSA.kid)


def test_public_key_from_certificate_uses_the_sha1_thumbprint_as_kid() -> None:
    pem = base64.b64encode(RSA.cert_der)
    key = PublicKey.from_certificate(
        b"-----BEGIN CERTIFICATE-----\n" + pem + b"\n-----END CERTIFICATE-----\n"
    )
    assert key.kid == key.x5t == RSA.kid
