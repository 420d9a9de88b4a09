"""Secrets from the environment are redacted by value after resolution, however they arrived.

``secret_values`` says which values are secret; ``redact`` replaces them in the
resolved config (and anything else a run writes). A value must be caught
whatever resolver or nesting carried it: as a number through ``oc.decode``,
through a variable named by another variable, through a resolver that reads
the environment without naming the variable in the config.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from omegaconf import OmegaConf

from codex_ml.config.secrets import redact, secret_values


def written(config: dict[str, Any]) -> Any:
    """What a run writes of ``config``: resolved, then redacted (as run/train.py does)."""
    node = OmegaConf.create(config)
    secrets = secret_values(OmegaConf.to_container(node, resolve=False))
    return redact(OmegaConf.to_container(node, resolve=True), secrets)


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The test's own environment: no secret-looking variable of the caller's shell."""
    for name in list(os.environ):
        monkeypatch.delenv(name)
    yield monkeypatch


def test_a_numeric_secret_decoded_to_an_int_is_redacted(environ: pytest.MonkeyPatch) -> None:
    environ.setenv("PIN_SECRET", "123456")
    out = written({"pin": "${oc.decode:${oc.env:PIN_SECRET}}", "steps": 123457})
    assert out == {"pin": "<redacted: $PIN_SECRET>", "steps": 123457}


@pytest.mark.parametrize("value", ["0123456", "1.5e6"])
def test_a_secret_a_resolver_made_into_another_number_is_redacted(
    environ: pytest.MonkeyPatch, value: str
) -> None:
    environ.setenv("PIN_SECRET", value)
    number = int(value) if value.isdigit() else float(value)
    assert redact({"pin": number}, secret_values({})) == {"pin": "<redacted: $PIN_SECRET>"}


def test_a_secret_named_by_another_variable_is_redacted(environ: pytest.MonkeyPatch) -> None:
    environ.setenv("WHICH", "API_TOKEN")
    environ.setenv("API_TOKEN", "hf_abcdefghijklmnop")
    out = written({"token": "${oc.env:${oc.env:WHICH}}", "url": "x/${oc.env:${oc.env:WHICH}}"})
    assert out == {"token": "<redacted: $API_TOKEN>", "url": "x/<redacted: $API_TOKEN>"}


def test_a_secret_a_resolver_reads_without_naming_it_is_redacted(
    environ: pytest.MonkeyPatch,
) -> None:
    environ.setenv("SERVICE_PASSWORD", "correct horse battery staple")
    OmegaConf.register_new_resolver("test_service_login", lambda: os.environ["SERVICE_PASSWORD"])
    try:
        out = written(
            {"login": "${test_service_login:}", "items": [{"k": "${test_service_login:}"}]}
        )
    finally:
        OmegaConf.clear_resolver("test_service_login")
    marker = "<redacted: $SERVICE_PASSWORD>"
    assert out == {"login": marker, "items": [{"k": marker}]}


def test_a_secret_used_as_a_key_is_redacted(environ: pytest.MonkeyPatch) -> None:
    environ.setenv("ROUTE_KEY", "k-9f8e7d6c")
    assert redact({"k-9f8e7d6c": 1}, secret_values({})) == {"<redacted: $ROUTE_KEY>": 1}


def test_a_short_secret_is_redacted_only_where_it_is_the_whole_value(
    environ: pytest.MonkeyPatch,
) -> None:
    environ.setenv("DB_PASSWORD", "abc")  # named by the config: counts however short
    out = written({"password": "${oc.env:DB_PASSWORD}", "note": "abcdef", "code": "abc"})
    assert out == {
        "password": "<redacted: $DB_PASSWORD>",
        "note": "abcdef",  # a 3-character substring match would mangle unrelated text
        "code": "<redacted: $DB_PASSWORD>",
    }


def test_a_long_secret_inside_a_string_is_redacted(environ: pytest.MonkeyPatch) -> None:
    environ.setenv("AWS_SECRET_ACCESS_KEY", "AKIA-very-secret")
    out = written({"path": "/data/${oc.env:AWS_SECRET_ACCESS_KEY}/corpus.txt"})
    assert out == {"path": "/data/<redacted: $AWS_SECRET_ACCESS_KEY>/corpus.txt"}


def test_unnamed_switches_and_short_values_are_not_taken_for_secrets(
    environ: pytest.MonkeyPatch,
) -> None:
    environ.setenv("TOKENIZERS_PARALLELISM", "false")
    environ.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    environ.setenv("RUN_COUNT", "1234567")  # the name does not look secret
    config = {"flag": "false", "n_layer": 1, "enabled": True, "seed": 1234567}
    assert written(config) == config


def test_booleans_are_never_numbers_to_redact(environ: pytest.MonkeyPatch) -> None:
    environ.setenv("FLAG_TOKEN", "1")
    assert redact({"on": True, "one": 1}, secret_values({"x": "${oc.env:FLAG_TOKEN}"})) == {
        "on": True,
        "one": "<redacted: $FLAG_TOKEN>",
    }
