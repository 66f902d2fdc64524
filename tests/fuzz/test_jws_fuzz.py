"""The compact-JWS parser and signature check on hostile input: arbitrary text, arbitrary JSON in
the header and payload, and valid tokens mutated byte by byte. Whatever comes in, the only
exceptions are keyless's own (``KeylessError``); anything else (``ValueError``, ``KeyError``,
``RecursionError``, ``UnicodeError``...) would surface as a 500 in the authority or the guard."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from keyless.errors import KeylessError
from keyless.jose import KeySet, Signer, encode_jwt, parse_compact, verify_signature

RSA = Signer.generate("RS256")
EC = Signer.generate("ES256")
KEYS = KeySet([RSA.public_key(), EC.public_key()])
ALGORITHMS = {"RS256", "ES256"}
VALID = [
    encode_jwt({"iss": "https://issuer.example", "sub": "s", "aud": "a", "exp": 2_000_000_000}, RSA),
    encode_jwt({"iss": "https://issuer.example", "nested": {"a": [1, 2.5, None, True]}}, EC),
]
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _parse_and_verify(token: Any) -> None:
    """Parse, then check the signature: each step may refuse only with keyless's own errors."""
    try:
        parsed = parse_compact(token)
        verify_signature(parsed, KEYS, algorithms=ALGORITHMS)
    except KeylessError:
        pass


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@given(st.text(max_size=400))
def test_arbitrary_text_raises_only_keyless_errors(token: str) -> None:
    _parse_and_verify(token)


@given(st.lists(st.text(alphabet=B64URL + ".=+/ \x00é", max_size=120), min_size=1, max_size=6))
def test_token_shaped_text_raises_only_keyless_errors(parts: list[str]) -> None:
    _parse_and_verify(".".join(parts))


@given(st.binary(max_size=300), st.binary(max_size=300), st.binary(max_size=300))
def test_arbitrary_bytes_in_each_segment_raise_only_keyless_errors(
    header: bytes, payload: bytes, sig: bytes
) -> None:
    _parse_and_verify(f"{_b64(header)}.{_b64(payload)}.{_b64(sig)}")


@given(json_values, json_values, st.sampled_from(VALID))
def test_arbitrary_json_header_and_payload_raise_only_keyless_errors(
    header: Any, payload: Any, valid: str
) -> None:
    signature = valid.rsplit(".", 1)[1]
    encoded = [_b64(json.dumps(value).encode()) for value in (header, payload)]
    _parse_and_verify(f"{encoded[0]}.{encoded[1]}.{signature}")


@given(
    st.sampled_from(VALID),
    st.lists(
        st.tuples(st.sampled_from(["replace", "insert", "delete"]), st.integers(0, 10_000), st.characters()),
        min_size=1,
        max_size=8,
    ),
)
def test_mutated_valid_tokens_raise_only_keyless_errors(
    valid: str, edits: list[tuple[str, int, str]]
) -> None:
    token = valid
    for kind, where, char in edits:
        at = where % (len(token) + 1)
        if kind == "insert":
            token = token[:at] + char + token[at:]
        elif kind == "replace":
            token = token[:at] + char + token[at + 1 :]
        else:
            token = token[:at] + token[at + 1 :]
    _parse_and_verify(token)


@given(
    st.sampled_from(VALID),
    st.sampled_from(["alg", "kid", "crit", "b64", "cty", "typ", "jku", "x5c"]),
    json_values,
)
def test_a_valid_token_with_one_header_member_replaced_raises_only_keyless_errors(
    valid: str, member: str, value: Any
) -> None:
    header_b64, payload_b64, signature = valid.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    header[member] = value
    _parse_and_verify(f"{_b64(json.dumps(header).encode())}.{payload_b64}.{signature}")


@given(st.integers(min_value=0, max_value=5000), st.sampled_from(["[", '{"a":']))
def test_deeply_nested_json_raises_only_keyless_errors(depth: int, opener: str) -> None:
    nested = _b64((opener * depth).encode())
    _parse_and_verify(f"{nested}.{nested}.c2ln")


def test_the_valid_tokens_themselves_verify() -> None:
    """The seeds are real tokens: the fuzzing starts from accepted input."""
    for token in VALID:
        assert verify_signature(parse_compact(token), KEYS, algorithms=ALGORITHMS).kid in (RSA.kid, EC.kid)


@given(st.one_of(st.binary(max_size=50), st.integers(), st.none(), st.lists(st.text(max_size=5), max_size=3)))
def test_a_token_that_is_not_text_raises_only_keyless_errors(token: Any) -> None:
    _parse_and_verify(token)
