"""The AADSTS error catalogue: every refusal the token service can give, in Entra's words.

Each entry is the ``error`` string, the HTTP status and the message Entra sends (from the
protocol reference), with ``{placeholders}``. ``refuse(code, **params)`` builds the
``OAuthError`` the HTTP layer serialises (adding trace id, correlation id and timestamp).
docs/reference/errors.md is generated from this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyless.errors import OAuthError

__all__ = ["CATALOGUE", "AadstsCode", "catalogue_markdown", "refuse"]

_FIC_HINT = (
    " Please check your federated identity credential Subject, Audience and Issuer against the presented "
    "assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
)


@dataclass(frozen=True, slots=True)
class AadstsCode:
    code: int
    error: str
    status: int
    template: str
    summary: str


_ENTRIES = [
    AadstsCode(
        90002,
        "invalid_tenant",
        400,
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing "
        "into the correct cloud. Check with your subscription administrator, this may happen if there are "
        "no active subscriptions for the tenant.",
        "Unknown tenant (by GUID or domain).",
    ),
    AadstsCode(
        900023,
        "invalid_request",
        400,
        "Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain.",
        "The tenant in the URL is neither a GUID nor a domain name.",
    ),
    AadstsCode(
        9001023,
        "invalid_request",
        400,
        "The grant type isn't supported over the /common or /consumers endpoints. Please use the "
        "/organizations or tenant-specific endpoint.",
        "client_credentials sent to /common, /organizations or /consumers.",
    ),
    AadstsCode(
        900144,
        "invalid_request",
        400,
        "The request body must contain the following parameter: '{parameter}'.",
        "A required form parameter is missing.",
    ),
    AadstsCode(
        900561,
        "invalid_request",
        400,
        "The endpoint only accepts {method} requests. Received a {received} request.",
        "Wrong HTTP method on the token endpoint.",
    ),
    AadstsCode(
        90014,
        "invalid_request",
        400,
        "The request body must be application/x-www-form-urlencoded and no larger than {limit} bytes.",
        "The token request body is not a form, is malformed, or is too large.",
    ),
    AadstsCode(
        70003,
        "unsupported_grant_type",
        400,
        "The app requested an unsupported grant type '{grant_type}'.",
        "Only client_credentials is supported.",
    ),
    AadstsCode(
        700016,
        "unauthorized_client",
        400,
        "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can "
        "happen if the application has not been installed by the administrator of the tenant or consented "
        "to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
        "Unknown client_id in this tenant.",
    ),
    AadstsCode(
        7000218,
        "invalid_client",
        401,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        "No client authentication was presented.",
    ),
    AadstsCode(
        7000215,
        "invalid_client",
        401,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
        "value, not the client secret ID, for a secret added to app '{client_id}'.",
        "Wrong client secret.",
    ),
    AadstsCode(
        7000222,
        "invalid_client",
        401,
        "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to "
        "create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate "
        "credentials for added security: https://aka.ms/certCreds.",
        "The only matching client secret has expired.",
    ),
    AadstsCode(
        50027,
        "invalid_request",
        400,
        "JWT token is invalid or malformed. {detail}",
        "The client assertion is not a well-formed signed JWT, or its claims are unusable.",
    ),
    AadstsCode(
        700021,
        "invalid_client",
        401,
        "Client assertion application identifier doesn't match 'client_id' parameter. {detail}",
        "A certificate assertion's iss/sub is not the client_id.",
    ),
    AadstsCode(
        700023,
        "invalid_client",
        401,
        "Client assertion audience claim does not match Realm issuer. Review the documentation at "
        "https://learn.microsoft.com/entra/identity-platform/certificate-credentials . {detail}",
        "A certificate assertion's aud is not this token endpoint.",
    ),
    AadstsCode(
        700027,
        "invalid_client",
        401,
        "Client assertion failed signature validation. {detail}",
        "Bad signature, unknown key or certificate, or a refused algorithm.",
    ),
    AadstsCode(
        700024,
        "invalid_client",
        401,
        "Client assertion is not within its valid time range. Current time: {now}, assertion valid from "
        "{nbf}, expiry time of assertion {exp}. Review the documentation at "
        "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        "The assertion is expired or not yet valid (beyond the allowed clock skew).",
    ),
    AadstsCode(
        700025,
        "invalid_client",
        401,
        "Client assertion contains an invalid 'jti' claim: the assertion was already used. {detail}",
        "A certificate assertion was replayed (single-use jti).",
    ),
    AadstsCode(
        70021,
        "invalid_client",
        401,
        "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. "
        "Assertion Subject: '{sub}'. Assertion Audience: '{aud}'." + _FIC_HINT,
        "No federated credential matches the assertion (or the app has none).",
    ),
    AadstsCode(
        700211,
        "invalid_client",
        401,
        "No matching federated identity record found for presented assertion issuer '{iss}'." + _FIC_HINT,
        "No federated credential of the app has this issuer.",
    ),
    AadstsCode(
        700212,
        "invalid_client",
        401,
        "No matching federated identity record found for presented assertion audience '{aud}'." + _FIC_HINT,
        "Issuer and subject match a credential, the audience does not.",
    ),
    AadstsCode(
        700213,
        "invalid_client",
        401,
        "No matching federated identity record found for presented assertion subject '{sub}'." + _FIC_HINT,
        "The issuer matches a credential, the subject does not.",
    ),
    AadstsCode(
        7002138,
        "invalid_client",
        401,
        "No matching federated identity record found for presented assertion subject '{sub}'. The subject "
        "matches with case-insensitive comparison, but not with case-sensitive comparison." + _FIC_HINT,
        "The subject differs from a credential's only by case.",
    ),
    AadstsCode(
        700222,
        "invalid_client",
        401,
        "AAD-issued tokens may not be used for federated identity flows. {detail}",
        "The assertion was issued by this authority itself.",
    ),
    AadstsCode(
        90061,
        "invalid_request",
        400,
        "Request to External OIDC endpoint failed.",
        "The assertion issuer's discovery document or keys could not be fetched.",
    ),
    AadstsCode(
        7000272,
        "invalid_client",
        401,
        "The certificate with identifier {kid} used to sign the federated credential could not be found in "
        "the metadata of identity provider {iss}. Please validate that your Identity Provider's metadata "
        "exposes the key used to sign the incoming token.",
        "The assertion's kid is not in its issuer's JWKS (even after a refetch).",
    ),
    AadstsCode(
        9002313,
        "invalid_request",
        400,
        "Invalid request. Request is malformed or invalid. {detail}",
        "Duplicate parameters, two client authentications at once, or a bad client_assertion_type.",
    ),
    AadstsCode(
        500011,
        "invalid_resource",
        400,
        "The resource principal named {resource} was not found in the tenant named {tenant}. This can "
        "happen if the application has not been installed by the administrator of the tenant or consented "
        "to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
        "The scope or resource names no application in the tenant.",
    ),
    AadstsCode(
        1002012,
        "invalid_scope",
        400,
        "The provided value for scope {scope} is not valid. Client credential flows must have a scope value "
        "with /.default suffixed to the resource identifier (application ID URI).",
        "A client_credentials scope without /.default.",
    ),
    AadstsCode(
        700022,
        "invalid_scope",
        400,
        "The provided value for the input parameter scope is not valid because it contains more than one "
        "resource. Scope {scope} is not valid.",
        "The scope names more than one resource.",
    ),
    AadstsCode(
        501051,
        "invalid_grant",
        400,
        "Application '{client_id}'({client_name}) is not assigned to a role for the application "
        "'{resource}'({resource_name}).",
        "The resource requires role assignment and the client holds no role on it.",
    ),
    AadstsCode(
        50049,
        "invalid_instance",
        400,
        "Unknown or invalid instance.",
        "Instance discovery for an authority this server does not serve.",
    ),
    AadstsCode(
        90033,
        "temporarily_unavailable",
        503,
        "A transient error has occurred. Please try again.",
        "The request needs the database (a certificate assertion's jti replay check) and it did not "
        "answer within KEYLESS_DATABASE_TIMEOUT; sent with Retry-After (Entra's MsodsServiceUnavailable).",
    ),
]

CATALOGUE: dict[int, AadstsCode] = {entry.code: entry for entry in _ENTRIES}


class _Lenient(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return ""


def refuse(code: int, **params: object) -> OAuthError:
    """The ``OAuthError`` for catalogue entry ``code``, its message filled from ``params``."""
    entry = CATALOGUE[code]
    message = entry.template.format_map(_Lenient(params)).rstrip()
    # A detail the message does not show (an internal URL, an upstream status) is kept for the
    # audit log and the refusal store only: the caller gets what Entra gives.
    detail = params.get("detail")
    hidden = str(detail) if detail and "{detail}" not in entry.template else None
    return OAuthError(
        entry.error, f"AADSTS{code}: {message}", status=entry.status, aadsts=code, detail=hidden
    )


def catalogue_markdown() -> str:
    """docs/reference/errors.md, generated from this table (``python -m keyless._docs``)."""
    lines = [
        "# Error catalogue",
        "",
        "<!-- generated by `python -m keyless._docs docs/reference`; do not edit -->",
        "",
        "Every refusal of the token endpoint, with Entra's code, `error` value and HTTP status. The body is",
        "Entra's JSON (`error`, `error_description` starting `AADSTSnnn:`, `error_codes`, `timestamp`,",
        "`trace_id`, `correlation_id`, `error_uri`). Tenants with `detailedErrors` on also get the exact",
        "mismatch appended to `error_description`; admins always find it in the `keyless.audit` log.",
        "",
        "| AADSTS | error | HTTP | when |",
        "|---|---|---|---|",
    ]
    for entry in sorted(CATALOGUE.values(), key=lambda e: e.code):
        lines.append(f"| {entry.code} | `{entry.error}` | {entry.status} | {entry.summary} |")
    lines += ["", "## Messages", ""]
    for entry in sorted(CATALOGUE.values(), key=lambda e: e.code):
        lines += [f"### AADSTS{entry.code}", "", "```", entry.template, "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(catalogue_markdown(), end="")
