"""Every example in README.md runs as written, and the output it quotes is the output the CLI prints."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from custseg.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"
REAL = "../shared/data/cc_general.csv"


def blocks(text: str) -> list[tuple[str, str]]:
    """The fenced blocks of ``text`` as (language, body), in order."""
    return [(m[1], m[2]) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)]


def example_commands(text: str) -> list[list[str]]:
    """The custseg command lines of the bash examples (the two set-up commands excepted)."""
    lines = [line for lang, body in blocks(text) if lang == "bash" and "python3 -m venv" not in body
             for line in body.splitlines() if line.strip()]
    assert all(line.startswith(".venv/bin/custseg ") for line in lines), lines
    return [shlex.split(line)[1:] for line in lines]


def quoted_run_output(text: str) -> list[str]:
    """The lines README says `custseg run` prints on the real file."""
    after = text.split("### A real example", 1)[1]
    lang, body = blocks(after)[0]
    assert lang == ""
    return body.rstrip("\n").splitlines()


def python_example(text: str) -> str:
    return next(body for lang, body in blocks(text) if lang == "python")


@pytest.fixture(scope="module")
def workdir(real_data_path, tmp_path_factory):
    """A folder where README's relative paths resolve: ``../shared`` holds the real file."""
    root = tmp_path_factory.mktemp("readme")
    (root / "shared" / "data").mkdir(parents=True)
    (root / "shared" / "data" / "cc_general.csv").symlink_to(real_data_path)
    (root / "main").mkdir()
    return root / "main"


def test_every_command_example_runs_and_the_quoted_output_is_true(workdir, monkeypatch):
    text = README.read_text()
    commands = example_commands(text)
    assert commands[0] == ["run", REAL, "--out", "out"]
    monkeypatch.chdir(workdir)
    runner = CliRunner()
    run_id = None
    for args in commands:
        args = [run_id if a == "RUN_ID" else a for a in args]
        assert None not in args, "RUN_ID used before `history` printed one"
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
        if args == commands[0]:
            assert result.stdout.rstrip("\n").splitlines() == quoted_run_output(text)
        if args[0] == "history":
            run_id = result.stdout.split()[0]


def test_the_library_example_runs_and_its_quoted_values_hold(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    code = python_example(README.read_text()).replace('"out"', '"out-library"')
    namespace: dict = {}
    for line in code.splitlines():  # README's example is one statement per line
        quoted = re.fullmatch(r"(\S.*?)\s+#\s+(\d+)\s*", line)
        if quoted:  # an expression README says evaluates to this number
            assert eval(quoted[1], namespace) == int(quoted[2]), line
        else:
            exec(line, namespace)
    assert (workdir / "out-library" / "segments.csv").is_file()
