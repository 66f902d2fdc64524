"""Async twins of ``keyless.credential``'s credentials (asyncio), with the same options and
behaviour; the assertion sources, types and errors are shared with the sync package."""

from keyless.credential.aio._credential import ClientAssertionCredential, WorkloadIdentityCredential

__all__ = ["ClientAssertionCredential", "WorkloadIdentityCredential"]
