"""The raw `cryptography` ceiling: RS256 sign and verify operations per second on one core."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def ops_per_second(fn: Callable[[], object], seconds: float) -> float:
    """Run ``fn`` in batches for about ``seconds``; return calls per second."""
    calls, batch, start = 0, 16, time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls / elapsed


@dataclass(frozen=True)
class Ceiling:
    sign_per_s: float
    verify_per_s: float

    @property
    def sign_and_verify_per_s(self) -> float:
        """One verify (the assertion) plus one sign (the access token): a token request's crypto."""
        return 1 / (1 / self.sign_per_s + 1 / self.verify_per_s)


def measure_ceiling(seconds: float = 2.0) -> Ceiling:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key()
    data = b"x" * 600  # about a JWT's signing input
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    sign = ops_per_second(lambda: key.sign(data, padding.PKCS1v15(), hashes.SHA256()), seconds)
    verify = ops_per_second(
        lambda: public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256()), seconds
    )
    return Ceiling(sign, verify)
