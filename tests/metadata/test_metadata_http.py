"""The emulator's HTTP surface, checked with plain httpx on a real socket: paths, content types,
headers, ``?alt`` / ``?recursive``, and every refusal the real metadata server makes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from keyless.jose import parse_compact
from keyless.metadata import (
    COMMON_HEADERS,
    DEFAULT_ACCOUNT_EMAIL,
    DEFAULT_UNIQUE_ID,
    MetadataServer,
    ServiceAccount,
    load_metadata_config,
)

V1 = "/computeMetadata/v1"
SA = f"{V1}/instance/service-accounts"
FLAVOR = {"Metadata-Flavor": "Google"}
AUDIENCE = "api://AzureADTokenExchange"
OTHER = ServiceAccount(
    "runner@keyless-local.iam.gserviceaccount.com", "998877665544332211009", aliases=("runner",)
)


@pytest.fixture(scope="module")
def two_accounts() -> Iterator[httpx.Client]:
    config = load_metadata_config(
        service_accounts=[ServiceAccount(DEFAULT_ACCOUNT_EMAIL, DEFAULT_UNIQUE_ID), OTHER],
        license_ids=["1000010", "1000020"],
    )
    with MetadataServer(config) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def get(client: httpx.Client, path: str, **params: str) -> httpx.Response:
    return client.get(path, params=params, headers=FLAVOR)


def assert_common_headers(response: httpx.Response) -> None:
    for name, value in COMMON_HEADERS.items():
        assert response.headers[name] == value, name


# -- the ping and directories --------------------------------------------------------------------


def test_root_answers_the_google_auth_ping_without_the_header(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.text == "computeMetadata/\n"
    assert response.headers["content-type"] == "application/text"
    assert_common_headers(response)


def test_every_response_carries_the_metadata_server_headers(client: httpx.Client) -> None:
    for response in (
        get(client, f"{V1}/project/project-id"),
        get(client, f"{V1}/nothing-here"),
        client.get(f"{V1}/project/project-id"),
        client.get("/.well-known/openid-configuration"),
        client.post(f"{V1}/project/project-id", headers=FLAVOR),
    ):
        assert_common_headers(response)
        assert "uvicorn" not in response.headers.get("server", "")


def test_directories_list_entries_with_a_slash_for_subdirectories(client: httpx.Client) -> None:
    assert get(client, "/computeMetadata/").text == "v1/\n"
    assert get(client, f"{V1}/").text == "instance/\nproject/\nuniverse/\n"
    listing = get(client, f"{V1}/instance/")
    assert listing.headers["content-type"] == "application/text"
    assert listing.text.splitlines() == ["hostname", "id", "name", "region", "service-accounts/", "zone"]
    assert get(client, f"{SA}/").text == f"default/\n{DEFAULT_ACCOUNT_EMAIL}/\n"
    assert get(client, f"{SA}/default/").text == "aliases\nemail\nidentity\nscopes\ntoken\n"


def test_a_directory_without_its_slash_redirects_keeping_the_query(client: httpx.Client) -> None:
    response = get(client, f"{SA}/default", recursive="true")
    assert response.status_code == 301
    assert response.headers["location"] == f"{SA}/default/?recursive=true"


def test_recursive_service_account_is_the_json_google_auth_reads(client: httpx.Client) -> None:
    response = get(client, f"{SA}/default/", recursive="true")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "aliases": ["default"],
        "email": DEFAULT_ACCOUNT_EMAIL,
        "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
    }


def test_recursive_json_uses_camel_case_names_and_numbers_like_the_real_server(client: httpx.Client) -> None:
    body = get(client, f"{V1}/", recursive="true").json()
    assert body["project"] == {"numericProjectId": 123456789012, "projectId": "keyless-local"}
    assert body["universe"] == {"universeDomain": "googleapis.com"}
    instance = body["instance"]
    assert isinstance(instance["id"], int)
    assert instance["zone"] == "projects/123456789012/zones/us-central1-a"
    assert set(instance["serviceAccounts"]) == {"default", DEFAULT_ACCOUNT_EMAIL}
    assert "token" not in instance["serviceAccounts"]["default"]


def test_alt_text_on_a_recursive_directory_gives_path_value_lines(client: httpx.Client) -> None:
    response = get(client, f"{SA}/default/", recursive="true", alt="text")
    assert response.headers["content-type"] == "application/text"
    assert response.text == (
        "aliases/0 default\n"
        f"email {DEFAULT_ACCOUNT_EMAIL}\n"
        "scopes/0 https://www.googleapis.com/auth/cloud-platform\n"
    )


def test_alt_json_on_a_plain_directory_lists_its_entries(client: httpx.Client) -> None:
    response = get(client, f"{V1}/project/", alt="json")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == ["numeric-project-id", "project-id"]


# -- leaves --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("project/project-id", "keyless-local"),
        ("project/numeric-project-id", "123456789012"),
        ("instance/id", "4815162342108000001"),
        ("instance/name", "keyless-local"),
        ("instance/zone", "projects/123456789012/zones/us-central1-a"),
        ("instance/region", "projects/123456789012/regions/us-central1"),
        ("universe/universe-domain", "googleapis.com"),
        ("instance/service-accounts/default/email", DEFAULT_ACCOUNT_EMAIL),
        ("instance/service-accounts/default/aliases", "default\n"),
        ("instance/service-accounts/default/scopes", "https://www.googleapis.com/auth/cloud-platform\n"),
    ],
)
def test_leaves_are_application_text(client: httpx.Client, path: str, text: str) -> None:
    response = get(client, f"{V1}/{path}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/text"
    assert response.text == text
    assert response.headers["etag"]


def test_alt_json_on_a_leaf_returns_json_values(client: httpx.Client) -> None:
    assert get(client, f"{V1}/project/project-id", alt="json").json() == "keyless-local"
    assert get(client, f"{V1}/project/numeric-project-id", alt="json").json() == 123456789012
    scopes = get(client, f"{SA}/default/scopes", alt="json")
    assert scopes.headers["content-type"] == "application/json"
    assert scopes.json() == ["https://www.googleapis.com/auth/cloud-platform"]


def test_an_unknown_alt_is_a_bad_request(client: httpx.Client) -> None:
    assert get(client, f"{V1}/project/project-id", alt="yaml").status_code == 400


# -- identity and token --------------------------------------------------------------------------


def test_identity_returns_a_bare_jwt_as_text_html(client: httpx.Client) -> None:
    response = get(client, f"{SA}/default/identity", audience=AUDIENCE)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html"
    parsed = parse_compact(response.text)
    assert parsed.header["alg"] == "RS256"
    assert len(parsed.kid or "") == 40
    assert parsed.payload["sub"] == parsed.payload["azp"] == DEFAULT_UNIQUE_ID
    assert "google" not in parsed.payload  # format=standard


def test_identity_by_email_and_by_alias_is_for_that_account(two_accounts: httpx.Client) -> None:
    by_email = get(two_accounts, f"{SA}/{OTHER.email}/identity", audience=AUDIENCE)
    by_alias = get(two_accounts, f"{SA}/runner/identity", audience=AUDIENCE)
    assert parse_compact(by_email.text).payload["sub"] == OTHER.unique_id
    assert by_alias.text == by_email.text
    assert get(two_accounts, f"{SA}/").text == f"default/\n{DEFAULT_ACCOUNT_EMAIL}/\n{OTHER.email}/\n"


def test_full_format_with_licenses_adds_the_license_ids(two_accounts: httpx.Client) -> None:
    response = get(two_accounts, f"{SA}/default/identity", audience=AUDIENCE, format="full", licenses="TRUE")
    engine = parse_compact(response.text).payload["google"]["compute_engine"]
    assert engine["license_id"] == ["1000010", "1000020"]
    lower = get(two_accounts, f"{SA}/default/identity", audience=AUDIENCE, format="full", licenses="true")
    assert lower.text == response.text
    without = get(two_accounts, f"{SA}/default/identity", audience=AUDIENCE, format="full")
    assert "license_id" not in parse_compact(without.text).payload["google"]["compute_engine"]


def test_token_returns_an_opaque_bearer_token_as_json(client: httpx.Client, emulator: MetadataServer) -> None:
    response = get(
        client, f"{SA}/default/token", scopes="https://www.googleapis.com/auth/userinfo.email,openid"
    )
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert body["access_token"].startswith("ya29.")
    assert body["token_type"] == "Bearer"
    assert 3500 < body["expires_in"] <= 3600
    info = emulator.issuer.access_token_info(body["access_token"])
    assert info is not None
    assert info.scopes == ("https://www.googleapis.com/auth/userinfo.email", "openid")
    again = get(client, f"{SA}/default/token", scopes="https://www.googleapis.com/auth/userinfo.email,openid")
    assert again.json()["access_token"] == body["access_token"]


# -- refusals ------------------------------------------------------------------------------------


def test_a_request_without_the_metadata_flavor_header_is_forbidden(client: httpx.Client) -> None:
    response = client.get(f"{SA}/default/identity", params={"audience": AUDIENCE})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert 'Missing required header "Metadata-Flavor": "Google"' in response.text
    assert client.get(f"{V1}/project/project-id", headers={"Metadata-Flavor": "google"}).status_code == 403


def test_the_legacy_metadata_request_header_is_accepted(client: httpx.Client) -> None:
    response = client.get(f"{V1}/project/project-id", headers={"X-Google-Metadata-Request": "True"})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/", f"{V1}/project/project-id", f"{SA}/default/identity?audience=x"])
def test_a_request_with_x_forwarded_for_is_refused(client: httpx.Client, path: str) -> None:
    response = client.get(path, headers={**FLAVOR, "X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 403
    assert_common_headers(response)


@pytest.mark.parametrize("audience", [None, ""])
def test_identity_without_an_audience_is_a_bad_request(client: httpx.Client, audience: str | None) -> None:
    params = {} if audience is None else {"audience": audience}
    response = client.get(f"{SA}/default/identity", params=params, headers=FLAVOR)
    assert response.status_code == 400
    assert "non-empty audience parameter required" in response.text


@pytest.mark.parametrize(("name", "value"), [("format", "compact"), ("licenses", "yes")])
def test_identity_with_a_bad_option_is_a_bad_request(client: httpx.Client, name: str, value: str) -> None:
    assert get(client, f"{SA}/default/identity", audience=AUDIENCE, **{name: value}).status_code == 400


def test_token_with_an_empty_scope_is_a_bad_request(client: httpx.Client) -> None:
    assert get(client, f"{SA}/default/token", scopes="openid,,email").status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        f"{SA}/nobody@keyless-local.iam.gserviceaccount.com/identity?audience=x",
        f"{SA}/nobody@keyless-local.iam.gserviceaccount.com/email",
        f"{V1}/instance/attributes/",
        f"{V1}/project/project-id/",
        "/computeMetadata/v2/",
        "/elsewhere",
    ],
)
def test_an_unknown_path_or_account_is_googles_404_page(client: httpx.Client, path: str) -> None:
    response = client.get(path, headers=FLAVOR)
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "Error 404 (Not Found)" in response.text


@pytest.mark.parametrize("method", ["HEAD", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize("path", ["/", f"{SA}/default/identity?audience=x", f"{SA}/default/token"])
def test_methods_other_than_get_are_not_allowed(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path, headers=FLAVOR)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


# -- the issuer's endpoints ----------------------------------------------------------------------


def test_discovery_and_keys_need_no_metadata_header(client: httpx.Client, emulator: MetadataServer) -> None:
    discovery = client.get("/.well-known/openid-configuration")
    assert discovery.status_code == 200
    document = discovery.json()
    assert document["issuer"] == emulator.url
    assert document["jwks_uri"] == f"{emulator.url}/oauth2/v3/certs"
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    jwks = client.get("/oauth2/v3/certs").json()
    assert [k["kid"] for k in jwks["keys"]] == [emulator.issuer.keys.current.kid]
    assert {k["kty"] for k in jwks["keys"]} == {"RSA"}
    assert {k["alg"] for k in jwks["keys"]} == {"RS256"}


def test_the_v1_certs_url_serves_a_pem_map_by_kid(client: httpx.Client, emulator: MetadataServer) -> None:
    certs = client.get("/oauth2/v1/certs").json()
    assert list(certs) == [emulator.issuer.keys.current.kid]
    assert next(iter(certs.values())).startswith("-----BEGIN CERTIFICATE-----")


def test_google_issuer_mode_names_google_but_keeps_its_own_jwks_uri() -> None:
    with MetadataServer(load_metadata_config(issuer="google")) as server:
        document = httpx.get(f"{server.url}/.well-known/openid-configuration").json()
        token = httpx.get(f"{server.url}{SA}/default/identity?audience=x", headers=FLAVOR).text
    assert document["issuer"] == "https://accounts.google.com"
    assert document["jwks_uri"] == f"{server.url}/oauth2/v3/certs"
    assert parse_compact(token).payload["iss"] == "https://accounts.google.com"


def test_the_request_log_records_what_clients_called(client: httpx.Client, emulator: MetadataServer) -> None:
    get(client, f"{V1}/project/project-id", alt="json")
    assert emulator.requests[-1] == f"GET {V1}/project/project-id?alt=json"
    assert json.loads(get(client, f"{V1}/project/project-id", alt="json").text) == "keyless-local"
