"""What a refusal leaves behind: the audit log and the refusal store never hold a request value
verbatim (a secret sent as client_id, a whole JWT, a forged log line), rows are bounded, and the
caller is told what Entra tells, while internal detail (an issuer's URL and status) stays with admins."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest
from tests._support.authority_server import Federation, RunningAuthority
from tests._support.oidc_issuer import TestIssuer
from tests.authority.test_token_errors import SUBJECT, federated_form, post

from keyless.authority.directory.recordable import MAX_REASON, fingerprint, printable

SECRET = "Qx8~v3.Kp_Zr9sL2mN4bT7wY1aE6dF0gH5jC"  # an Entra-style client secret value


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "keyless.audit"]


def stored(authority: RunningAuthority) -> str:
    return "\n".join(repr(r.to_json()) for r in authority.authority.refusals.recent(None, limit=1000))


def admin_refusals(authority: RunningAuthority, tenant: str) -> str:
    with httpx.Client(verify=authority.ssl_context(), timeout=10) as client:
        answer = client.get(
            f"{authority.base_url}/admin/v1.0/tenants/{tenant}/refusals",
            headers={"Authorization": f"Bearer {authority.admin_key()}"},
        )
    assert answer.status_code == 200, answer.text
    return answer.text


@pytest.mark.parametrize(
    "value",
    [SECRET, "eyJhbGciOiJSUzI1NiJ9." + "eyJzdWIiOiJ4In0" * 40 + ".c2lnbmF0dXJl"],
    ids=["client-secret", "whole-jwt"],
)
def test_a_secret_or_token_sent_as_client_id_is_never_recorded(
    authority: RunningAuthority, federation: Federation, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    caplog.set_level(logging.INFO, logger="keyless.audit")
    form = {
        "grant_type": "client_credentials",
        "client_id": value,
        "client_secret": "x",
        "scope": federation.scope,
    }
    response = post(authority, federation.tenant_id, form)
    assert response.status_code in (400, 401)
    logged, kept, listed = (
        "\n".join(audit_lines(caplog)),
        stored(authority),
        admin_refusals(authority, federation.tenant_id),
    )
    for text in (logged, kept, listed):
        assert value not in text
        assert value[:16] not in text
    assert fingerprint(value) in kept and fingerprint(value) in listed


def test_a_secret_in_the_tenant_segment_is_never_recorded(
    authority: RunningAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="keyless.audit")
    response = post(authority, SECRET, {"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert SECRET not in "\n".join(audit_lines(caplog))
    assert SECRET not in stored(authority)
    assert fingerprint(SECRET) in stored(authority)


def test_a_newline_in_grant_type_cannot_forge_an_audit_line(
    authority: RunningAuthority, federation: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="keyless.audit")
    forged = "x\nrefused AADSTS0 /forged tenant=admin client=root reason=forged"
    response = post(
        authority,
        federation.tenant_id,
        {"grant_type": forged, "client_id": federation.client.app_id, "scope": federation.scope},
    )
    assert response.status_code == 400
    lines = audit_lines(caplog)
    assert lines and all("\n" not in line and "\r" not in line for line in lines)
    assert not any("tenant=admin" in line for line in lines)  # an unsupported grant type is fingerprinted
    assert "\n" not in stored(authority).replace("\n{", "{")  # rows are joined by newlines above


def test_a_newline_in_a_quoted_claim_is_escaped(
    authority: RunningAuthority,
    federation: Federation,
    issuer: TestIssuer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unverified claim quoted in a refusal (here the subject, AADSTS700213) stays on one line."""
    caplog.set_level(logging.INFO, logger="keyless.audit")
    assertion = issuer.mint(sub="x\nrefused AADSTS0 /forged tenant=admin client=root reason=forged")
    response = post(authority, federation.tenant_id, federated_form(federation, assertion))
    assert response.json()["error_codes"] == [700213]
    lines = audit_lines(caplog)
    assert lines and all("\n" not in line and "\r" not in line for line in lines)
    assert any("x\\nrefused AADSTS0" in line for line in lines)


def test_a_secret_sent_as_grant_type_is_never_recorded(
    authority: RunningAuthority, federation: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    """The grant type is read before any authentication and quoted in AADSTS70003: a secret pasted
    there reaches neither the log nor the store, though the caller still gets Entra's message."""
    caplog.set_level(logging.INFO, logger="keyless.audit")
    form = {"grant_type": SECRET, "client_id": federation.client.app_id, "scope": federation.scope}
    response = post(authority, federation.tenant_id, form)
    assert response.json()["error_codes"] == [70003]
    logged, kept, listed = (
        "\n".join(audit_lines(caplog)),
        stored(authority),
        admin_refusals(authority, federation.tenant_id),
    )
    for text in (logged, kept, listed):
        assert SECRET not in text
        assert fingerprint(SECRET) in text


def test_the_supported_grant_type_is_recorded_as_it_is(
    authority: RunningAuthority, federation: Federation
) -> None:
    post(authority, federation.tenant_id, {"grant_type": "client_credentials", "client_id": "x" * 40})
    (refusal,) = authority.authority.refusals.recent(None, limit=1)
    assert refusal.aadsts == 900144  # scope missing: the grant type passed and is not hidden
    assert "unverified" not in refusal.reason


def test_a_short_unvalidated_value_hides_only_where_it_stands_alone() -> None:
    reason = "AADSTS700016: Application with identifier 'a' was not found in the directory 'abc'."
    hidden = printable(reason, hide=["a"])
    assert hidden == reason.replace("'a'", f"'{fingerprint('a')}'")


def test_a_long_value_is_hidden_wherever_it_appears_and_fingerprints_are_not_rewritten() -> None:
    reason = f"grant type '{SECRET}' and again x{SECRET}y"
    hidden = printable(reason, hide=[SECRET, SECRET[:4], "sha256"])
    assert SECRET not in hidden and SECRET[:4] not in hidden
    assert hidden.count(fingerprint(SECRET)) == 2
    assert f"x{fingerprint(SECRET)}y" in hidden


def test_a_refusal_row_is_bounded_when_an_unverified_claim_is_quoted(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    """AADSTS700211 quotes the assertion's issuer as sent; a 10 KB issuer is cut to the bound."""
    assertion = issuer.mint(iss="https://" + "i" * 10_000 + ".example", sub=SUBJECT)
    response = post(authority, federation.tenant_id, federated_form(federation, assertion))
    assert response.json()["error_codes"] == [700211]
    (refusal,) = authority.authority.refusals.recent(None, limit=1)
    assert len(refusal.reason) <= MAX_REASON
    assert sum(len(str(v)) for v in refusal.to_json().values()) < 4096


def test_a_refusal_row_is_bounded(authority: RunningAuthority, federation: Federation) -> None:
    huge = "g" * 60_000
    post(
        authority,
        federation.tenant_id,
        {"grant_type": huge, "client_id": federation.client.app_id, "scope": federation.scope},
    )
    (refusal,) = authority.authority.refusals.recent(None, limit=1)
    assert len(refusal.reason) <= MAX_REASON
    assert sum(len(str(v)) for v in refusal.to_json().values()) < 4096


def test_a_validated_client_id_and_tenant_are_recorded_as_they_are(
    authority: RunningAuthority, federation: Federation
) -> None:
    post(
        authority,
        federation.tenant_id,
        {
            "grant_type": "client_credentials",
            "client_id": federation.client.app_id,
            "client_secret": "wrong",
            "scope": federation.scope,
        },
    )
    (refusal,) = authority.authority.refusals.recent(None, limit=1)
    assert (refusal.tenant, refusal.client_id) == (federation.tenant_id, federation.client.app_id)


def test_an_unreachable_issuers_url_is_kept_for_admins_and_off_the_wire(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    assertion = issuer.mint(sub=SUBJECT)
    issuer.down()
    response = post(authority, federation.tenant_id, federated_form(federation, assertion))
    assert response.json()["error_codes"] == [90061]
    where = issuer.url.split("://", 1)[1]
    assert where not in response.text
    assert response.json()["error_description"].startswith(
        "AADSTS90061: Request to External OIDC endpoint failed."
    )
    assert where in admin_refusals(authority, federation.tenant_id)


def test_an_unknown_client_guid_is_recorded(authority: RunningAuthority, federation: Federation) -> None:
    unknown = str(uuid.uuid4())
    post(
        authority,
        federation.tenant_id,
        {
            "grant_type": "client_credentials",
            "client_id": unknown,
            "client_secret": "x",
            "scope": federation.scope,
        },
    )
    (refusal,) = authority.authority.refusals.recent(None, limit=1)
    assert refusal.client_id == unknown
