"""The README and the guides in docs/ stay true to the code.

- Every ``cyclestyle …`` command line in a fenced code block of README.md or docs/*.md (also
  ``accelerate launch … -m cyclestyle …``, ``torchrun … -m cyclestyle …`` and
  ``python -m cyclestyle …``; ``\\`` continuations joined, ``# comments`` and ``$ `` prompts
  dropped) parses with the real argument parser, and its ``--set`` overrides name config keys
  that exist and take the values given.
- Every ``--set KEY=VALUE`` anywhere in the docs, and every dotted config key in backticks
  (``train.lr``), names a key that exists.
- docs/configuration.md documents every config key, and every key it documents exists, with the
  code's default. Its convention: one Markdown table row per key, whose FIRST cell is the full
  dotted key in backticks (`` `train.lr` ``, top-level keys bare: `` `seed` ``; ``log.with`` as
  YAML spells it) and whose SECOND cell is the default as one YAML value in backticks
  (`` `0.0002` ``, `` `null` ``, `` `[]` ``, `` `""` ``).
- Every relative link and image of the docs points at a file that exists (and a ``#anchor`` at
  a heading of that file).

The config keys come from one function, ``config_keys``, below: the one place to change when the
config's sections move.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import typing
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def config_keys() -> dict[str, typing.Any]:
    """Every config key as YAML spells it (``train.lr``, ``log.with``, top-level ``seed``), with
    its default: the fields of ``Config``, recursing into its section dataclasses, and each
    registered method's own section (``cut:``, ``style:``), typed by the method's dataclass."""
    from cyclestyle import config as c
    from cyclestyle.training.methods import METHODS

    yaml_key = {"with_": "with"}
    keys: dict[str, typing.Any] = {}

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if cls is c.Config and f.name == "sections":
                continue
            key = prefix + yaml_key.get(f.name, f.name)
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], key + ".")
            else:
                keys[key] = f.default_factory() if f.default is dataclasses.MISSING else f.default

    walk(c.Config, "")
    for method in METHODS.values():  # the package's own (a test may register one of its own)
        if method.section is not None and method.__module__.startswith("cyclestyle."):
            walk(method.options_type, method.section + ".")
    return keys


# --------------------------------------------------------------------------------------------
# Reading the docs


@dataclasses.dataclass(frozen=True)
class Command:
    file: str
    line: int
    text: str  # as written, continuations joined
    args: tuple[str, ...]  # what follows `cyclestyle`

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


def _fenced_lines(path: Path):
    """(line number, line) of every line inside a ``` fence, continuations joined."""
    inside, pending, start = False, "", 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            inside, pending = not inside, ""
            continue
        if not inside:
            continue
        stripped = line.strip()
        if stripped.startswith("$ "):
            stripped = stripped[2:]
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        yield start, pending + stripped
        pending = ""


def _cyclestyle_args(tokens: list[str]) -> list[str] | None:
    """The arguments after the `cyclestyle` program (or `-m cyclestyle`), or None: not a command."""
    if tokens and (tokens[0] == "cyclestyle" or tokens[0].endswith("/cyclestyle")):
        return tokens[1:]
    if tokens and Path(tokens[0]).name in ("accelerate", "torchrun", "python", "python3"):
        for i in range(len(tokens) - 1):
            if tokens[i] == "-m" and tokens[i + 1] == "cyclestyle":
                return tokens[i + 2:]
    return None


def documented_commands() -> list[Command]:
    commands = []
    for path in DOCS:
        for number, line in _fenced_lines(path):
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError:  # not shell (a tree, an unbalanced quote in prose): not a command
                continue
            args = _cyclestyle_args(tokens)
            if args is not None:
                commands.append(Command(str(path.relative_to(ROOT)), number, line.strip(), tuple(args)))
    return commands


def _set_items(args: tuple[str, ...]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--set"]


COMMANDS = documented_commands()


def test_the_docs_hold_command_lines_to_check():
    """A guard on the extraction itself: if it found nothing, the tests below would pass vacuously."""
    assert len(COMMANDS) >= 40, [str(c) for c in COMMANDS]
    assert {c.file for c in COMMANDS} >= {"README.md", "docs/training.md", "docs/evaluation.md",
                                         "docs/methods.md", "docs/models.md"}
    assert any(c.text.startswith("accelerate launch") for c in COMMANDS)
    assert any(c.text.startswith("torchrun") for c in COMMANDS)


def _parse(command: Command):
    """The namespace argparse makes of a command, or a test failure quoting argparse's message."""
    import contextlib
    import io

    from cyclestyle.cli import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            return build_parser().parse_args(list(command.args))
    except SystemExit as e:
        if e.code in (0, None) and ("--help" in command.args or "-h" in command.args):
            return None
        message = err.getvalue().strip().splitlines()[-1:] or [f"exit {e.code}"]
        pytest.fail(f"{command}\n  does not parse: {message[0]}")


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_every_documented_command_parses(command: Command):
    _parse(command)


def _config_for(command: Command) -> tuple[str | None, list[str]]:
    """The config file and overrides that a command's run reads, as the command builds them
    (train, style-train, demo; see cyclestyle/cli.py)."""
    import json

    args = _parse(command)
    config, overrides = getattr(args, "config", None), list(getattr(args, "overrides", []))
    if args.command == "style-train":
        overrides = ["method=fast_style", f"style.images={json.dumps(args.style)}", f"output_dir={args.output}",
                     *overrides]
    elif args.command == "demo":
        config = "configs/demo.yaml"
    if config is None:
        return None, overrides
    path = Path(config) if Path(config).is_absolute() else ROOT / config
    if not path.is_file():
        pytest.fail(f"{command}\n  names a config file that is not in the repository: {config}")
    return str(path), overrides


@pytest.mark.parametrize("command", [c for c in COMMANDS if _set_items(c.args)], ids=str)
def test_every_documented_set_names_a_key_and_a_value_it_takes(command: Command):
    from cyclestyle.config import ConfigError
    from cyclestyle.training.configure import load_config

    keys = config_keys()
    for item in _set_items(command.args):
        key = item.partition("=")[0].strip()
        assert key in keys, f"{command}\n  --set {item}: no config key {key}"
    config, overrides = _config_for(command)
    try:
        load_config(config, overrides, check_paths=False)
    except ConfigError as e:
        pytest.fail(f"{command}\n  its config and --set values are refused: {e}")


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.args[:1] in (("train",), ("style-train",))], ids=str)
def test_every_documented_config_file_exists(command: Command):
    if "--help" not in command.args:
        _config_for(command)


# Dotted config keys in prose: `train.lr`, `eval.metric: fid`, --set data.root=...
_SECTIONS = ("data", "model", "loss", "train", "wandb", "log", "eval", "style", "cut")
_FILE_SUFFIXES = {"py", "json", "jsonl", "yaml", "yml", "html", "png", "md", "pt", "pt2", "pth", "onnx",
                  "safetensors", "txt", "sh"}
_TICKED_KEY = re.compile(r"`(?:--set\s+)?\"?((?:%s)\.[A-Za-z_]+)(?=[`:=\s\"])" % "|".join(_SECTIONS))
_SET_ANYWHERE = re.compile(r"--set\s+[\"']?([A-Za-z_][\w.]*)=")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_config_key_named_in_the_docs_exists(path: Path):
    keys = config_keys()
    missing = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        named = {m.group(1) for m in _TICKED_KEY.finditer(line)} | {m.group(1) for m in _SET_ANYWHERE.finditer(line)}
        for key in sorted(named):
            if key.rpartition(".")[2] not in _FILE_SUFFIXES and key not in keys:
                missing.append(f"{path.relative_to(ROOT)}:{number}: {key}")
    assert not missing, "config keys that do not exist:\n" + "\n".join(missing)


# --------------------------------------------------------------------------------------------
# docs/configuration.md

_ROW_KEY = re.compile(r"^\|\s*`([A-Za-z_][\w.]*)`\s*\|\s*`([^`]*)`\s*\|")


def documented_keys() -> dict[str, tuple[int, str]]:
    """Key -> (line, default as written) of every table row of docs/configuration.md that
    starts with a backticked key."""
    rows: dict[str, tuple[int, str]] = {}
    path = ROOT / "docs" / "configuration.md"
    for number, line in enumerate(path.read_text().splitlines(), 1):
        m = _ROW_KEY.match(line)
        if m:
            assert m.group(1) not in rows, f"docs/configuration.md:{number}: {m.group(1)} documented twice"
            rows[m.group(1)] = (number, m.group(2))
    return rows


def test_configuration_guide_documents_every_config_key():
    missing = sorted(set(config_keys()) - set(documented_keys()))
    assert not missing, f"config keys missing from docs/configuration.md: {', '.join(missing)}"


def test_every_key_the_configuration_guide_documents_exists():
    keys = config_keys()
    extra = [f"line {n}: {k}" for k, (n, _) in documented_keys().items() if k not in keys]
    assert not extra, "docs/configuration.md documents keys that do not exist: " + "; ".join(extra)


def _same(documented: typing.Any, default: typing.Any) -> bool:
    if isinstance(default, float) and not isinstance(documented, bool):
        try:
            return float(documented) == default  # YAML 1.1 reads 1e5 as a string
        except (TypeError, ValueError):
            return False
    return documented == default and type(documented) is type(default)


def test_configuration_guide_gives_each_key_its_code_default():
    keys = config_keys()
    wrong = []
    for key, (number, text) in documented_keys().items():
        if key in keys and not _same(yaml.safe_load(text), keys[key]):
            wrong.append(f"line {number}: {key} documented as `{text}`, the code's default is {keys[key]!r}")
    assert not wrong, "docs/configuration.md: wrong defaults:\n" + "\n".join(wrong)


# --------------------------------------------------------------------------------------------
# Links

# Guides another part of issue 21 is writing at the same time; a link to one counts once it exists.
PENDING = {"docs/python.md"}

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    anchors, inside = set(), False
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
        elif not inside and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path):
    broken = []
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # links in code are not links
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: …
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists() and str(resolved.relative_to(ROOT)) not in PENDING:
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    assert not broken, f"{path.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


def test_readme_is_at_most_250_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
