"""Settings from flags, a --config file (pydantic-settings' own YAML, TOML and JSON sources), the
environment and the defaults; and every file that is not a settings file refused on one line."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.settings import MAX_CONFIG_BYTES, load_settings

FILES = {
    "yaml": "watch_threshold: 12\nwarning_threshold: 20\napi_token: s3cret\nhalf_life: 2d\n",
    "yml": "watch_threshold: 12\nwarning_threshold: 20\napi_token: s3cret\nhalf_life: 2d\n",
    "conf": "watch_threshold: 12\nwarning_threshold: 20\napi_token: s3cret\nhalf_life: 2d\n",  # YAML
    "toml": 'watch_threshold = 12\nwarning_threshold = 20\napi_token = "s3cret"\nhalf_life = "2d"\n',
    "json": '{"watch_threshold": 12, "warning_threshold": 20, "api_token": "s3cret", "half_life": "2d"}',
}


@pytest.fixture(autouse=True)
def no_crisismon_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith("CRISISMON_"):
            monkeypatch.delenv(name)


def settings_file(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize("suffix", FILES)
def test_flags_win_over_the_file_which_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    monkeypatch.setenv("CRISISMON_WARNING_THRESHOLD", "25")
    monkeypatch.setenv("CRISISMON_CRITICAL_THRESHOLD", "40")
    config = settings_file(tmp_path, f"settings.{suffix}", FILES[suffix])
    settings = load_settings(config, watch_threshold=10, warning_threshold=None)
    assert settings.watch_threshold == 10  # the flag
    assert settings.warning_threshold == 20  # the file (the flag was not given)
    assert settings.critical_threshold == 40  # the environment
    assert settings.clearing_ratio == 0.6  # the default
    assert settings.half_life == timedelta(days=2)
    assert settings.api_token is not None and settings.api_token.get_secret_value() == "s3cret"


def test_an_unknown_name_is_refused_by_name(tmp_path: Path) -> None:
    config = settings_file(tmp_path, "typo.toml", "watch_treshold = 12\n")
    with pytest.raises(ValidationError, match="watch_treshold"):
        load_settings(config)


def test_yaml_is_read_safely(tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    config = settings_file(
        tmp_path, "evil.yaml", f'half_life: !!python/object/apply:os.system ["touch {pwned}"]\n'
    )
    with pytest.raises(ValueError, match="not valid YAML: could not determine a constructor"):
        load_settings(config)
    assert not pwned.exists()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("pairs.yaml", "- ab\n"),  # the library alone would read {"a": "b"}
        ("scalar.yaml", "watch_threshold\n"),
        ("pairs.json", '[["watch_threshold", 12]]'),
        ("number.json", "12"),
    ],
)
def test_only_a_mapping_is_a_settings_file(tmp_path: Path, name: str, content: str) -> None:
    with pytest.raises(ValueError, match="expected a mapping of settings"):
        load_settings(settings_file(tmp_path, name, content))


@pytest.mark.parametrize("suffix", ["yaml", "toml", "json"])
def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path, suffix: str) -> None:
    with pytest.raises(ValueError, match="utf-8"):
        load_settings(
            settings_file(tmp_path, f"latin1.{suffix}", "watch_threshold: 12 # é".encode("latin-1"))
        )


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("bad.yaml", "watch_threshold: [1,\n", "not valid YAML"),
        ("bad.toml", "watch_threshold = \n", "Invalid value"),
        ("bad.json", '{"watch_threshold": }', "Expecting value"),
    ],
)
def test_a_parse_error_is_one_line_naming_the_file(
    tmp_path: Path, name: str, content: str, problem: str
) -> None:
    config = settings_file(tmp_path, name, content)
    with pytest.raises(ValueError) as refused:
        load_settings(config)
    assert str(refused.value).startswith(f"{config}: {problem}") and "\n" not in str(refused.value)


def test_a_file_up_to_the_limit_is_read_and_a_bigger_one_refused_unread(tmp_path: Path) -> None:
    config = settings_file(tmp_path, "big.yaml", "#" * (MAX_CONFIG_BYTES - 1) + "\n")
    assert load_settings(config).watch_threshold == 6  # a comment: the defaults
    with config.open("ab") as grown:
        grown.truncate(10 * MAX_CONFIG_BYTES)  # sparse: costs no disk
    with pytest.raises(ValueError, match=f"over {MAX_CONFIG_BYTES} bytes"):
        load_settings(config)


def test_what_is_not_a_regular_file_is_refused_unopened(tmp_path: Path) -> None:
    pipe = tmp_path / "settings.yaml"
    os.mkfifo(pipe)  # opening it would wait for a writer
    for path in (Path("/dev/zero"), pipe, tmp_path):
        with pytest.raises(ValueError, match="not a regular file"):
            load_settings(path)


def test_a_missing_file_is_an_error_not_an_empty_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):  # pydantic-settings alone would skip it
        load_settings(tmp_path / "missing.yaml")
