"""Settings are read once from the environment and fail at cold start, by variable name."""

from __future__ import annotations

import pytest

from videogen.settings import ConfigurationError, Settings

REQUIRED = {
    "TABLE_NAME": "generations",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
    "OUTPUTS_BUCKET": "outputs",
    "AIML_API_KEY_SECRET_ID": "aiml-key",
}


def test_defaults_are_production_safe() -> None:
    settings = Settings.from_env(REQUIRED)

    assert settings.aiml_base_url == "https://api.aimlapi.com"
    assert settings.url_dns_strict is True
    assert settings.max_generation_age_seconds >= 20 * 60  # the slowest models take 9+ minutes
    assert settings.poll_concurrency >= 32


def test_values_are_parsed_from_strings() -> None:
    settings = Settings.from_env(
        {
            **REQUIRED,
            "POLL_CONCURRENCY": "64",
            "URL_DNS_STRICT": "false",
            "AIML_BASE_URL": "http://127.0.0.1:8090",
        }
    )

    assert settings.poll_concurrency == 64 and settings.url_dns_strict is False
    assert settings.aiml_base_url == "http://127.0.0.1:8090"


def test_missing_and_bad_values_name_the_variable() -> None:
    env = {k: v for k, v in REQUIRED.items() if k != "TABLE_NAME"} | {"POLL_CONCURRENCY": "zero"}

    with pytest.raises(ConfigurationError) as failed:
        Settings.from_env(env)

    assert "TABLE_NAME" in failed.value.message and "POLL_CONCURRENCY" in failed.value.message
