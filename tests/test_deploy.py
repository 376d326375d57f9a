"""The deployment files name only what exists: compose.yaml is valid against the Compose
Specification's schema, runs real `mlops` commands and sets real settings; .env.example lists
every setting; the systemd units pass `systemd-analyze verify` and start real commands.

Regenerate .env.example with `.venv/bin/python -m tests.test_deploy > .env.example`."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_tasks.settings import _fields, known_variables

from .test_docs import check_command

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "tests" / "data" / "compose-spec" / "compose-spec.json"
UNITS = ROOT / "deploy" / "systemd"
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
# Variables of compose.yaml that are not settings of the package: the Redis and Grafana
# passwords and where the published ports listen.
COMPOSE_ONLY = {"REDIS_PASSWORD", "FLOWER_PUBLISH_ADDRESS", "SERVE_PUBLISH_ADDRESS",
                "PROMETHEUS_PUBLISH_ADDRESS", "GRAFANA_ADMIN_PASSWORD",
                "GRAFANA_PUBLISH_ADDRESS"}
# What compose.yaml needs set to interpolate at all.
REQUIRED = {"REDIS_PASSWORD": "0123abcd"}
# Environment of a service that configures the program it runs, not the package: Grafana's
# GF_<SECTION>_<KEY> settings.
OTHER_PROGRAMS = ("GF_",)


def render_env_example() -> str:
    """.env.example: the compose-only variables, then every setting with its default and
    meaning, commented out (an empty value counts as unset)."""
    lines = ["# Copy to .env next to compose.yaml (`cp .env.example .env`) and set what you need.",
             "# Generated from mlops_tasks/settings.py: `.venv/bin/python -m tests.test_deploy",
             "# > .env.example`; tests/test_deploy.py checks it lists every setting.", "",
             "# --- compose.yaml only ---",
             "# Password of the stack's Redis (required). Hex keeps it valid in a URL:",
             "# openssl rand -hex 32",
             "REDIS_PASSWORD=",
             "# Password of Grafana's admin user (required)",
             "GRAFANA_ADMIN_PASSWORD=",
             "# Host addresses of the published ports (default 127.0.0.1: this machine only)",
             "#FLOWER_PUBLISH_ADDRESS=127.0.0.1",
             "#SERVE_PUBLISH_ADDRESS=127.0.0.1",
             "#PROMETHEUS_PUBLISH_ADDRESS=127.0.0.1",
             "#GRAFANA_PUBLISH_ADDRESS=127.0.0.1", "",
             "# --- settings (`mlops config check` prints the effective values) ---"]
    for f in _fields():
        secret = " (secret)" if f.metadata["secret"] else ""
        default = "" if f.default is None else f.default
        if isinstance(default, bool):
            default = str(default).lower()
        lines.append(f"# {f.metadata['doc']}{secret}")
        lines.append(f"#{f.metadata['env']}={default}")
    return "\n".join(lines) + "\n"


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, as `docker compose` would."""
    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in env and (env[name] or op in {None, "-", "?"}):
            return env[name]
        if op in {":?", "?"}:
            raise ValueError(f"{name}: {arg}")
        return arg or ""
    return INTERPOLATION.sub(one, text.replace("$$", "\0")).replace("\0", "$")


def _variables(text: str) -> set[str]:
    return {m.group(1) for m in INTERPOLATION.finditer(text.replace("$$", ""))}


def test_compose_is_valid_against_the_compose_specification() -> None:
    """Given compose.yaml with its variables set, then it validates against the vendored
    Compose Specification schema; and without REDIS_PASSWORD it is refused, naming it."""
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    text = (ROOT / "compose.yaml").read_text()
    doc = yaml.safe_load(_interpolate(text, REQUIRED))
    jsonschema.Draft7Validator(schema).validate(doc)  # its $schema names draft 7
    for name in REQUIRED:
        with pytest.raises(ValueError, match=name):
            _interpolate(text, {k: v for k, v in REQUIRED.items() if k != name})


def test_a_missing_flower_password_stops_only_flower() -> None:
    """Given no MLOPS_FLOWER_BASIC_AUTH, then compose.yaml still interpolates (Flower's own
    refusal stops Flower alone), and Flower is not restarted forever."""
    text = (ROOT / "compose.yaml").read_text()
    doc = yaml.safe_load(_interpolate(text, REQUIRED))
    flower = doc["services"]["flower"]
    assert flower["environment"]["MLOPS_FLOWER_BASIC_AUTH"] == ""
    assert flower["restart"].startswith("on-failure:")
    assert flower["ports"] == ["127.0.0.1:5555:5555"]


def test_a_missing_grafana_password_stops_only_grafana(tmp_path: Path) -> None:
    """Given no GRAFANA_ADMIN_PASSWORD, then compose.yaml still interpolates, and Grafana's
    entrypoint (run here by a real shell) refuses to start rather than start with admin/admin;
    given one, it starts Grafana's own entrypoint."""
    text = (ROOT / "compose.yaml").read_text()
    grafana = yaml.safe_load(_interpolate(text, REQUIRED))["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == ""
    assert grafana["restart"].startswith("on-failure:")
    shell, flag, script = grafana["entrypoint"]
    fake_run = tmp_path / "run.sh"
    fake_run.write_text("#!/bin/sh\necho grafana started\n")
    fake_run.chmod(0o755)
    script = script.replace("/run.sh", str(fake_run))
    refused = subprocess.run([shell, flag, script], env={"GF_SECURITY_ADMIN_PASSWORD": ""},
                             capture_output=True, text=True, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("grafana: set GRAFANA_ADMIN_PASSWORD in .env "
                                      "(see .env.example)")
    started = subprocess.run([shell, flag, script], env={"GF_SECURITY_ADMIN_PASSWORD": "pw"},
                             capture_output=True, text=True, check=False)
    assert (started.returncode, started.stdout) == (0, "grafana started\n")


def test_every_compose_command_is_a_real_mlops_command() -> None:
    """Given each service built from the image (entrypoint `mlops`), then its command resolves
    in the CLI with options it has."""
    services = _compose()["services"]
    mlops = {name: s for name, s in services.items() if s.get("image") == "mlops-tasks:local"}
    assert {"worker-events", "worker-monitoring", "worker-tuning", "beat", "flower",
            "serve"} <= set(mlops)
    for name, service in mlops.items():
        problems = check_command(service["command"])
        assert not problems, (name, problems)


def test_every_variable_compose_uses_is_a_real_setting() -> None:
    """Given every variable compose.yaml sets or interpolates, then each is a setting of
    mlops_tasks/settings.py or one of the few compose-only variables."""
    text = (ROOT / "compose.yaml").read_text()
    known = set(known_variables())
    used = _variables(text)
    for service in _compose()["services"].values():
        used |= {k for k in service.get("environment") or {} if not k.startswith(OTHER_PROGRAMS)}
    unknown = sorted(v for v in used - COMPOSE_ONLY - known)
    assert unknown == []
    redis = _compose()["services"]["redis"]
    assert "--maxmemory-policy noeviction" in " ".join(redis["command"])
    assert "REDIS_PASSWORD" not in " ".join(redis["command"]).replace("$$REDIS_PASSWORD", "")


def test_env_example_lists_every_setting_with_its_default() -> None:
    """Given the settings' metadata, then .env.example is exactly what it generates: a new
    setting without its line there fails here."""
    assert (ROOT / ".env.example").read_text() == render_env_example()


def _units() -> list[Path]:
    return sorted(UNITS.glob("*.service"))


def _unit(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def test_every_unit_is_hardened_and_starts_a_real_command() -> None:
    """Given each systemd unit, then it runs as a dedicated user with the hardening options,
    restarts on failure, reads the environment file, and its ExecStart is a real command."""
    units = _units()
    assert {u.name for u in units} == {"mlops-worker@.service", "mlops-beat@.service",
                                       "mlops-serve.service", "mlops-flower.service"}
    for path in units:
        service = _unit(path)["Service"]
        for key, value in {"User": "mlops", "NoNewPrivileges": "yes",
                           "ProtectSystem": "strict", "Restart": "on-failure",
                           "EnvironmentFile": "/etc/mlops/mlops.env"}.items():
            assert service.get(key) == value, (path.name, key)
        argv = shlex.split(service["ExecStart"].replace("%i", "events"))
        assert argv[0] == "/opt/mlops/venv/bin/mlops", path.name
        assert not check_command(argv[1:]), (path.name, check_command(argv[1:]))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """Given the units with ExecStart pointing at this virtualenv's `mlops` (verify checks the
    binary exists), then `systemd-analyze verify` reports nothing."""
    mlops = Path(sys.executable).with_name("mlops")
    for path in _units():
        text = path.read_text().replace("/opt/mlops/venv/bin/mlops", str(mlops))
        (tmp_path / path.name).write_text(text)
    names = [str(tmp_path / p.name.replace("@.", "@events." if "worker" in p.name else "@1."))
             for p in _units()]
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *names],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stderr


if __name__ == "__main__":
    sys.stdout.write(render_env_example())
