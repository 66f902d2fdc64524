"""The emulator's configuration: defaults that work alone, a small YAML file, overrides from
flags, and every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyless.errors import ConfigurationError
from keyless.metadata import (
    DEFAULT_ACCOUNT_EMAIL,
    DEFAULT_UNIQUE_ID,
    MetadataConfig,
    ServiceAccount,
    load_metadata_config,
)


def test_defaults_describe_one_instance_with_one_default_account() -> None:
    config = load_metadata_config()
    assert config == MetadataConfig()
    assert config.project_id == "keyless-local"
    assert config.numeric_project_id == 123456789012
    assert config.zone == "us-central1-a"
    assert config.effective_region == "us-central1"
    assert config.issuer == "self"
    assert config.token_lifetime == 3600
    assert config.reuse_margin == 300
    assert config.service_accounts == (ServiceAccount(DEFAULT_ACCOUNT_EMAIL, DEFAULT_UNIQUE_ID),)
    assert DEFAULT_UNIQUE_ID == "112233445566778899001"


def test_a_yaml_file_sets_project_instance_and_accounts(tmp_path: Path) -> None:
    path = tmp_path / "metadata.yaml"
    path.write_text(
        """
project_id: my-proj
numeric_project_id: 716149158341
zone: europe-west1-b
instance_id: "4340508760561261530"
instance_name: vm-for-gcp
issuer: google
license_ids: ["1000010"]
service_accounts:
  - email: runner@my-proj.iam.gserviceaccount.com
    unique_id: 104857600000000000001
    scopes: [https://www.googleapis.com/auth/cloud-platform, openid]
  - email: batch@my-proj.iam.gserviceaccount.com
    unique_id: "104857600000000000002"
    aliases: [batch]
"""
    )
    config = load_metadata_config(path)
    assert config.project_id == "my-proj"
    assert config.effective_region == "europe-west1"
    assert config.issuer == "google"
    assert config.default_account.unique_id == "104857600000000000001"
    assert config.default_account.scopes == ("https://www.googleapis.com/auth/cloud-platform", "openid")
    assert config.account("batch") == config.service_accounts[1]
    assert config.account("default") == config.default_account
    assert config.account("nobody@my-proj.iam.gserviceaccount.com") is None


def test_flag_overrides_win_over_the_file_and_change_the_default_account(tmp_path: Path) -> None:
    path = tmp_path / "metadata.yaml"
    path.write_text("project_id: from-file\nzone: us-east1-b\n")
    config = load_metadata_config(
        path,
        project_id="from-flags",
        zone=None,
        account_email="ci@from-flags.iam.gserviceaccount.com",
        unique_id="109876543210987654321",
    )
    assert config.project_id == "from-flags"
    assert config.zone == "us-east1-b"
    assert config.default_account == ServiceAccount(
        "ci@from-flags.iam.gserviceaccount.com", "109876543210987654321"
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "metadata.yaml"
    path.write_text(
        """
project_id: X
numeric_project_id: lots
zone: nowhere
colour: blue
issuer: azure
token_lifetime: 7200
service_accounts:
  - email: not-an-email
    unique_id: "12345"
  - email: also@p.iam.gserviceaccount.com
"""
    )
    with pytest.raises(ConfigurationError) as caught:
        load_metadata_config(path)
    problems = "\n".join(caught.value.problems)
    for expected in (
        "numeric_project_id: must be a whole number",
        "colour: unknown setting",
        "service_accounts[1].unique_id: required",
        "project_id: 'X' is not a project id",
        "zone: 'nowhere' is not a zone",
        "issuer: 'azure' must be 'self' or 'google'",
        "token_lifetime: 7200 must be 60-3600 seconds",
        "service_accounts[0].email: 'not-an-email' is not an email address",
        "service_accounts[0].unique_id: '12345' must be 21 digits",
    ):
        assert expected in problems
    assert all(p.startswith(f"{path}: ") for p in caught.value.problems)


@pytest.mark.parametrize(
    "unique_id", ["12345", "012345678901234567890", "1122334455667788990012", "11223344556677889900x"]
)
def test_a_unique_id_must_be_21_digits(unique_id: str) -> None:
    with pytest.raises(ConfigurationError, match="must be 21 digits"):
        load_metadata_config(unique_id=unique_id)


def test_two_accounts_may_not_share_an_email_or_alias() -> None:
    with pytest.raises(ConfigurationError, match="already used"):
        MetadataConfig(
            service_accounts=(
                ServiceAccount("a@p-123456.iam.gserviceaccount.com", "100000000000000000001", aliases=("x",)),
                ServiceAccount("b@p-123456.iam.gserviceaccount.com", "100000000000000000002", aliases=("x",)),
            )
        )


def test_unknown_overrides_and_unreadable_files_are_configuration_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="colour: unknown setting"):
        load_metadata_config(colour="blue")
    with pytest.raises(ConfigurationError, match="cannot read it"):
        load_metadata_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("project_id: [unclosed\n")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_metadata_config(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigurationError, match="top level must be a mapping"):
        load_metadata_config(listed)


def test_an_empty_file_means_the_defaults(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_metadata_config(empty) == MetadataConfig()
