"""The lean verification path the guard relies on (keyless.jose._jws): faster, and exactly as strict.

Pins what the fast path must not loosen: the header cache never bypasses a size limit or leaks
changes between tokens, JSON stays strict (duplicates at any depth, NaN, trailing data), the RSA
DigestInfo comparison refuses what a ``verify`` call refuses, and candidate keys are never mixed up
between key sets.
"""

from __future__ import annotations

import dataclasses
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from keyless.errors import InvalidSignature, MalformedToken, UnknownKey
from keyless.jose import (
    KeySet,
    ParsedJWS,
    PublicKey,
    Signer,
    b64url,
    encode_jwt,
    parse_compact,
    verify_signature,
)

RSA = Signer.generate("RS256")
EC = Signer.generate("ES256")


def _token(header: dict[str, object], payload: bytes, signature: bytes = b"sig") -> str:
    return b64url(json.dumps(header).encode()) + "." + b64url(payload) + "." + b64url(signature)


def test_a_cached_header_still_obeys_a_smaller_header_limit() -> None:
    token = encode_jwt({"sub": "a"}, RSA, headers={"x5u": "x" * 400})
    assert parse_compact(token).header["x5u"]  # now cached
    with pytest.raises(MalformedToken, match="header is larger than 100"):
        parse_compact(token, max_header=100)


def test_a_parsed_header_is_read_only_so_no_token_can_change_the_shared_copy() -> None:
    token = encode_jwt({"sub": "a"}, RSA)
    first = parse_compact(token)
    with pytest.raises(TypeError):
        first.header["alg"] = "none"  # type: ignore[index]
    assert parse_compact(token).header["alg"] == "RS256"


@pytest.mark.parametrize("where", ["header", "payload", "signature"])
@pytest.mark.parametrize("character", ["+", "/", "="])
def test_standard_base64_characters_and_padding_are_refused_in_every_segment(
    where: str, character: str
) -> None:
    segments = dict(
        zip(("header", "payload", "signature"), encode_jwt({"sub": "a"}, RSA).split("."), strict=True)
    )
    segments[where] = segments[where][:8] + character + segments[where][9:]
    with pytest.raises(MalformedToken, match=f"{where} is not valid base64url"):
        parse_compact(".".join(segments.values()))


@pytest.mark.parametrize(
    "payload",
    [
        b'{"a":1,"a":1}',  # the same value twice: re-encoding drops one, so the fast path declines
        b'{"a":1,"b":{"c":2,"c":2}}',
        b'{"aud":"x","aud":"x","sub":"s"}',
    ],
)
def test_duplicate_members_with_equal_values_are_refused_too(payload: bytes) -> None:
    with pytest.raises(MalformedToken, match="duplicate"):
        parse_compact(_token({"alg": "RS256"}, payload))


@pytest.mark.parametrize(
    ("payload", "claims"),
    [
        (b'{"name":"Ren\\u00e9e"}', {"name": "Renée"}),  # escaped non-ASCII, as .NET writes it
        (b'{"url":"https:\\/\\/x"}', {"url": "https://x"}),  # escaped solidus
        (b'{"big":18446744073709551615,"small":-9223372036854775808}', {"big": 2**64 - 1, "small": -(2**63)}),
        (b'{"f":1.5e3,"n":-0}', {"f": 1500.0, "n": 0}),
        ('{"name":"Renée"}'.encode(), {"name": "Renée"}),
    ],
)
def test_valid_json_the_fast_decoder_declines_is_decoded_by_the_strict_one(
    payload: bytes, claims: dict[str, object]
) -> None:
    assert parse_compact(_token({"alg": "RS256"}, payload)).payload == claims


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"a":{"b":1,"b":2}}', "duplicate"),
        (b'{"a":[{"b":1,"b":2}]}', "duplicate"),
        (b'{"exp":NaN}', "JSON"),
        (b'{"exp":Infinity}', "JSON"),
        (b'{"exp":-Infinity}', "JSON"),
        (b'{"exp":1e400}', "JSON"),  # would be infinity: a token that never expires
        (b'{"a":1,"exp":-1e400}', "JSON"),
        (b' {"exp":1E999} ', "JSON"),  # the strict decoder's path (whitespace around)
        (b'{"exp":100000000000000000000000000000}', "JSON"),  # beyond 64 bits: never expires either
        (b'{"n":-9223372036854775809}', "JSON"),
        (b'{"a":1} x', "JSON"),
        (b'{"a":1}{"b":2}', "JSON"),
        (b"", "JSON"),
        (b'"text"', "object"),
        (b"\xef\xbb\xbf{}", "JSON"),  # a byte-order mark is not JSON text
        (b'{"a":"\xff"}', "JSON"),  # not UTF-8
        (b"[" * 5000 + b"]" * 5000, "JSON"),  # deeper than the recursion limit
    ],
)
def test_payload_json_stays_strict(payload: bytes, reason: str) -> None:
    with pytest.raises(MalformedToken, match=reason):
        parse_compact(_token({"alg": "RS256"}, payload))


def test_json_whitespace_around_the_object_is_accepted() -> None:
    parsed = parse_compact(_token({"alg": "RS256"}, b' \n{"a" : 1}\t\r\n'))
    assert parsed.payload == {"a": 1}


def test_parsed_tokens_are_ordinary_frozen_dataclasses() -> None:
    token = encode_jwt({"sub": "a"}, RSA)
    parsed = parse_compact(token)
    header, payload, _ = token.split(".")
    rebuilt = ParsedJWS(parsed.header, parsed.payload, f"{header}.{payload}".encode(), parsed.signature)
    assert parsed == rebuilt
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.signature = b""  # type: ignore[misc]


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512"])
def test_pkcs1_signatures_from_pyjwt_verify_and_tampering_fails(alg: str) -> None:
    private = serialization.load_der_private_key(RSA.private_pkcs8(), password=None)
    token = jwt.encode({"sub": "a"}, private, algorithm=alg, headers={"kid": RSA.kid})  # type: ignore[arg-type]
    keys = KeySet([RSA.public_key()])
    assert verify_signature(parse_compact(token), keys, algorithms={alg}).kid == RSA.kid
    header, payload, _ = token.split(".")
    other = jwt.encode({"sub": "b"}, private, algorithm=alg).split(".")[2]
    with pytest.raises(InvalidSignature):
        verify_signature(parse_compact(f"{header}.{payload}.{other}"), keys, algorithms={alg})


def test_a_pkcs1_signature_for_another_hash_is_refused() -> None:
    private = serialization.load_der_private_key(RSA.private_pkcs8(), password=None)
    rs512 = jwt.encode({"sub": "a"}, private, algorithm="RS512")  # type: ignore[arg-type]
    header = b64url(json.dumps({"alg": "RS256", "kid": RSA.kid}).encode())
    _, payload, signature = rs512.split(".")
    with pytest.raises(InvalidSignature):
        verify_signature(
            parse_compact(f"{header}.{payload}.{signature}"), KeySet([RSA.public_key()]), algorithms={"RS256"}
        )


def test_a_signature_shorter_than_the_modulus_is_refused() -> None:
    # Find a signature with a leading zero byte, strip it: the integer is the same, the encoding is not.
    for n in range(2000):
        token = encode_jwt({"n": n}, RSA)
        parsed = parse_compact(token)
        if parsed.signature[0] == 0:
            break
    else:  # pragma: no cover - 1 in 256 signatures starts with a zero byte
        pytest.skip("no signature with a leading zero byte")
    keys = KeySet([RSA.public_key()])
    assert verify_signature(parsed, keys, algorithms={"RS256"})
    header, payload, _ = token.split(".")
    short = f"{header}.{payload}.{b64url(parsed.signature[1:])}"
    with pytest.raises(InvalidSignature):
        verify_signature(parse_compact(short), keys, algorithms={"RS256"})


def test_candidate_keys_are_never_mixed_up_between_key_sets() -> None:
    token = encode_jwt({"sub": "a"}, RSA)
    parsed = parse_compact(token)
    other = Signer.generate("RS256")
    right, wrong = KeySet([RSA.public_key()]), KeySet([PublicKey(other.public_key().key, kid=RSA.kid)])
    for _ in range(3):
        assert verify_signature(parsed, right, algorithms={"RS256"})
        with pytest.raises(InvalidSignature):
            verify_signature(parsed, wrong, algorithms={"RS256"})
    with pytest.raises(UnknownKey):
        verify_signature(parsed, KeySet([EC.public_key()]), algorithms={"RS256"})


def test_es256_still_verifies_and_refuses_a_wrong_length() -> None:
    token = encode_jwt({"sub": "a"}, EC)
    keys = KeySet([EC.public_key()])
    assert verify_signature(parse_compact(token), keys, algorithms={"ES256"})
    header, payload, _ = token.split(".")
    padded = b64url(parse_compact(token).signature + b"\x00")
    with pytest.raises(InvalidSignature):
        verify_signature(parse_compact(f"{header}.{payload}.{padded}"), keys, algorithms={"ES256"})
