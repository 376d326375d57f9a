"""Every `mlops ...` command shown in README.md and docs/*.md is real: its command path resolves
in the CLI, every option it names is an option of that command, and a concrete command (no
placeholder) parses with `--help` appended, in this process (click's CliRunner)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mlops_tasks.cli.main import cli
from mlops_tasks.settings import known_variables

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"`(mlops [^`]+)`")
# In a shell line: `mlops`, `.venv/bin/mlops` or `$ mlops`, up to `&&`, `;`, ` | ` or a comment.
SHELL = re.compile(r"(?:^|[\s/$])mlops((?:\s+[^\s;&#]+)*)")
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console"}
PLACEHOLDER = re.compile(r"[\[\]|]|\.\.\.|^[A-Z][A-Z0-9_,.]*$")


def documented_commands() -> list[tuple[str, str]]:
    """(file, command line after `mlops`) for every command shown in the documents."""
    found: list[tuple[str, str]] = []
    for path in DOCS:
        text = path.read_text()
        for language, body in FENCE.findall(text):
            if language.strip() not in SHELL_LANGUAGES:
                continue
            for line in body.splitlines():
                for part in re.split(r"&&|;|\s\|\s", line):
                    found.extend((path.name, m.group(1).strip()) for m in SHELL.finditer(part)
                                 if not part.lstrip().startswith("#"))
        prose = FENCE.sub("", text)
        found.extend((path.name, " ".join(m.group(1).split()[1:]))
                     for m in INLINE.finditer(prose))
    return [(name, line) for name, line in found if line.strip(". ")]


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


def check_command(words: list[str]) -> list[str]:
    """Problems of `mlops WORDS` (a synopsis such as `run monitoring|tuning [--model M]` or a
    concrete command line): an unknown command, sub-command or option. Empty when real."""
    command: click.Command = cli
    ctx = click.Context(cli, info_name="mlops")
    rest = list(words)
    while isinstance(command, click.Group) and rest and not rest[0].lstrip("[(").startswith("-"):
        names = rest[0].strip("[]()").split("|")
        found = [command.get_command(ctx, name) for name in names]
        if None in found:
            if command.invoke_without_command and command is not cli:
                break  # a group that is also a command: what follows is its arguments
            return [f"no command {' '.join(words[:len(words) - len(rest) + 1])!r}"]
        rest.pop(0)
        command = found[0]  # type: ignore[assignment]
    options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"-h",
                                                                                   "--help"}
    problems = []
    first = command.params[0] if command.params else None
    if (rest and isinstance(first, click.Argument) and isinstance(first.type, click.Choice)
            and not rest[0].startswith("-")):
        problems += [f"{command.name}: {value!r} is not one of {first.type.choices}"
                     for value in rest[0].strip("[]()").split("|")
                     if not PLACEHOLDER.search(value) and value not in first.type.choices]
    for word in rest:
        if word == "--":
            break
        for alternative in word.strip("[]()").split("|"):
            name = alternative.strip("[]()").split("=")[0]
            if name.startswith("-") and name not in options:
                problems.append(f"{command.name}: no option {name}")
    return problems


def _concrete(words: list[str]) -> bool:
    return not any(PLACEHOLDER.search(w) for w in words)


COMMANDS = documented_commands()


def test_the_documents_show_commands() -> None:
    """Given the documents, then the extractor finds their commands (guards the regexes)."""
    files = {name for name, _ in COMMANDS}
    assert {"README.md", "runbook.md", "deployment-workflow.md"} <= files
    assert len(COMMANDS) > 100


@pytest.mark.parametrize(("name", "line"), COMMANDS,
                         ids=[f"{n}:{line}" for n, line in COMMANDS])
def test_documented_command_is_real(name: str, line: str) -> None:
    """Given a command shown in a document, then its path and options exist, and a concrete
    one parses with --help appended (what comes after `--` goes to Celery and is not parsed)."""
    words = _words(line)
    assert check_command(words) == [], f"{name}: mlops {line}"
    if _concrete(words):
        cut = words[:words.index("--")] if "--" in words else words
        result = CliRunner().invoke(cli, [*cut, "--help"], prog_name="mlops")
        assert result.exit_code == 0, f"{name}: mlops {line}\n{result.output}"


@pytest.mark.parametrize("line", ["no-such-command", "list-models --no-such-option",
                                  "scheduler nothing", "run monitoring|nope [--model M]",
                                  "deploy NAME --versio V"])
def test_a_command_that_does_not_exist_is_caught(line: str) -> None:
    """Given a made-up command or option, then the check reports it."""
    assert check_command(_words(line))


def test_every_setting_named_in_docs_is_real() -> None:
    """Given every MLOPS_* variable the docs/ pages name, then each is a known setting."""
    known = set(known_variables())
    named = {v for path in DOCS[1:] for v in re.findall(r"\bMLOPS_[A-Z0-9_]*[A-Z0-9]",
                                                        path.read_text())}
    assert sorted(named - known) == []
