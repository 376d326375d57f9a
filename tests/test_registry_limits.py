"""The registry refuses hostile input: alias bombs, endless files, oversized records, deep
nesting, names with a trailing newline; and every refusal is one short line."""

from __future__ import annotations

import json
import time

import pytest
import redis

from mlops_tasks.errors import ValidationError
from mlops_tasks.registry import ModelConfig, Registry, semver, validate_model_name
from mlops_tasks.registry.limits import MAX_NESTING, MAX_RECORD_BYTES, quote, shorten

CONFIG = {"decision_threshold": 0.5, "accuracy_threshold": 0.8,
          "tuning": {"parameter": "t", "min": 0.1, "max": 0.9, "step": 0.1}}

# 9 levels of 9 aliases: 9**9 (387 million) strings from a file of about 540 bytes
BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] +
    [f"{b}: &{b} [{','.join(['*' + a] * 9)}]"
     for a, b in zip("abcdefgh", "bcdefghi", strict=True)]) + "\n"


def one_line_error(result) -> str:
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_a_yaml_alias_bomb_is_refused_at_once(cli, tmp_path) -> None:
    """Given a 540-byte billion-laughs file, register-model refuses it in well under a second,
    naming the file, and stores nothing."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS)
    assert len(BILLION_LAUGHS) < 600
    started = time.monotonic()
    result = cli("register-model", "x", "--config", str(bomb), expect=1)
    assert time.monotonic() - started < 2
    line = one_line_error(result)
    assert f"--config {bomb}: YAML anchors and aliases are not allowed, found &a" in line
    assert cli.json("list-models")["models"] == []


def test_any_yaml_anchor_is_refused(cli, tmp_path) -> None:
    """Even a harmless-looking anchor and merge key: the file must spell out what it means."""
    path = tmp_path / "model.yaml"
    path.write_text("base: &base {decision_threshold: 0.5}\nconfig:\n  <<: *base\n")
    line = one_line_error(cli("register-model", "x", "--config", str(path), expect=1))
    assert "anchors and aliases are not allowed, found &base (line 1, column 7)" in line


def test_an_endless_config_file_is_read_with_a_bound(cli) -> None:
    """`--config /dev/zero` stops after 1 MiB instead of reading forever."""
    started = time.monotonic()
    line = one_line_error(cli("register-model", "x", "--config", "/dev/zero", expect=1))
    assert line == "error: --config /dev/zero: larger than 1 MiB"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("suffix", "content"), [
    (".json", "[" * 100_000 + "]" * 100_000),
    (".yaml", "[" * 100_000 + "]" * 100_000),
    (".yaml", "".join(f"{'  ' * i}k{i}:\n" for i in range(MAX_NESTING + 5)) + "  " * 40 + "1\n"),
])
def test_deep_nesting_is_refused(cli, tmp_path, suffix, content) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text(content)
    line = one_line_error(cli("register-model", "x", "--config", str(path), expect=1))
    assert f"--config {path}: " in line
    assert "nest" in line


def test_an_oversized_configuration_is_refused_naming_the_field(cli, tmp_path) -> None:
    """A configuration whose JSON is over 64 KiB is never stored."""
    path = tmp_path / "big.json"
    path.write_text(json.dumps(dict(CONFIG, params={"blob": "x" * MAX_RECORD_BYTES})))
    line = one_line_error(cli("register-model", "x", "--config", str(path), expect=1))
    assert line.startswith("error: config.params: expected at most 64 KiB as JSON, got ")
    assert cli.json("list-models")["models"] == []


@pytest.mark.parametrize("field", ["description", "display_name"])
def test_oversized_metadata_is_refused_naming_the_field(cli, tmp_path, field) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({field: "d" * (MAX_RECORD_BYTES + 1), "config": CONFIG}))
    line = one_line_error(cli("register-model", "x", "--config", str(path), expect=1))
    assert line.startswith(f"error: {field}: ")
    assert "over the 64 KiB limit of a registry record" in line
    assert cli.json("list-models")["models"] == []


def test_every_record_written_is_bounded(registry: Registry, r: redis.Redis) -> None:
    """Revisions (--reason, --set), deployment records (--actor) and versions (description)
    over the limit are refused before anything is written."""
    cfg = ModelConfig.from_dict(CONFIG)
    registry.register("x", "1.0.0", cfg, actor="alice")
    huge = "r" * MAX_RECORD_BYTES
    with pytest.raises(ValidationError, match=r"^reason: the revision would be"):
        registry.set_config("x", actor="a", changes=[("params.k", 1)], reason=huge)
    with pytest.raises(ValidationError, match=r"^config.params: expected at most 64 KiB"):
        registry.set_config("x", actor="a", changes=[("params.k", huge)])
    with pytest.raises(ValidationError, match=r"^deployed_by: the deployment record would be"):
        registry.deploy("x", "1.0.0", "staging", actor=huge)
    with pytest.raises(ValidationError, match=r"^description: the"):
        registry.register("x", "1.1.0", cfg, actor="a", description=huge)
    assert registry.current("x")["revision"] == 1
    assert registry.versions("x") == ["1.0.0"]
    assert registry.deployment("x", "staging") is None
    assert max(len(v) for v in r.hvals("mlops:{x}:versions")) < MAX_RECORD_BYTES


def test_a_quoted_value_is_a_short_escaped_prefix(cli, tmp_path) -> None:
    """Pointing --config at an unrelated file does not echo its lines back: a refused value
    shows at most 40 characters, with control characters escaped."""
    path = tmp_path / "notes.yaml"
    secret = "password=hunter2-" + "s" * 200
    path.write_text(f'"line one \\e[2J {secret}": 1\n')
    line = one_line_error(cli("register-model", "x", "--config", str(path), expect=1))
    assert "\x1b" not in line and "\\x1b[2J" in line
    assert secret not in line and "..." in line
    assert len(line) < 200
    cli("register-all-models")
    line = one_line_error(cli("update-config", "n1-detector", "--set",
                              "colour" + "\n" * 3 + "k" * 500 + "=1", expect=1))
    assert line.startswith("error: --set colour\\n\\n\\nkkk") and len(line) < 200


def test_quote_and_shorten_bound_any_value() -> None:
    assert quote("loud") == "'loud'"
    assert quote("a" * 100) == "'" + "a" * 40 + "'..."
    assert quote("x\ny") == "'x\\ny'"
    assert len(quote({"k": ["v" * 10_000] * 10_000})) < 60
    assert quote(10 ** 5000) == "<int too long to show>"
    assert shorten("tuning.colour") == "tuning.colour"
    assert shorten("a\u202eb") == "a\\u202eb"


@pytest.mark.parametrize("name", ["fraud\n", "fraud\r\n", "\nfraud", "fraud\x00", "Fraud"])
def test_a_model_name_is_matched_whole(name) -> None:
    with pytest.raises(ValidationError, match=r"^name: expected a model name"):
        validate_model_name(name)


@pytest.mark.parametrize("version", ["1.0.0\n", "1.0.0-rc.1\n", "1.0.0+build\n",
                                     "1.0.0-" + "a" * 100])
def test_a_version_is_matched_whole_and_short(version) -> None:
    with pytest.raises(ValidationError, match=r"^version: expected a semantic version"):
        semver.validate(version)
    if version.endswith("\n"):
        with pytest.raises(ValidationError):
            semver.sort_key(version)


def test_names_with_a_trailing_newline_are_refused_by_the_cli(cli) -> None:
    cli("register-all-models")
    line = one_line_error(cli("register-model", "fraud\n", expect=1))
    assert line == ("error: name: expected a model name of lowercase letters, digits, '.', '_' "
                    "or '-' (1-64 characters, starting with a letter or digit), got 'fraud\\n'")
    line = one_line_error(cli("register-model", "n1-detector", "--version", "1.0.0\n",
                              expect=1))
    assert "version: expected a semantic version" in line and "'1.0.0\\n'" in line
    line = one_line_error(cli("deploy", "n1-detector", "--version", "1.0.0\n", "--env",
                              "staging", expect=1))
    assert "version: expected a semantic version" in line
    line = one_line_error(cli("update-config", "n1-detector", "--set",
                              "tuning.parameter=t\n", expect=1))
    assert "config.tuning.parameter: expected an identifier" in line
    assert cli.json("show-config", "n1-detector")["versions"] == ["1.0.0"]
