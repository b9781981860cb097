"""The Python API: what ``cyclestyle/__init__.py`` exports, and the guide that shows it."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest
from PIL import Image

import cyclestyle

from .conftest import REPO

GUIDE = REPO / "docs" / "python.md"


def guide_code() -> str:
    """The one Python block of docs/python.md, as a reader copies it."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1, f"docs/python.md should hold one python block, not {len(blocks)}"
    return blocks[0]


@pytest.mark.parametrize("name", cyclestyle.__all__)
def test_every_exported_name_imports_and_has_a_docstring(name):
    value = getattr(cyclestyle, name)
    assert value.__doc__ and value.__doc__.strip(), f"cyclestyle.{name} has no docstring"
    exec(f"from cyclestyle import {name}", {})


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        cyclestyle.trian  # noqa: B018


def test_importing_the_package_and_asking_for_help_load_no_torch():
    code = ("import sys, cyclestyle, cyclestyle.cli\n"
            "from cyclestyle import __all__\n"
            "cyclestyle.cli.build_parser().format_help()\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "from cyclestyle import open_run\n"
            "assert 'torch' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_the_python_guide_runs_as_written(tmp_path, monkeypatch):
    """docs/python.md's block, exactly, in a fresh folder with the repository's configs/."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(REPO / "configs")
    namespace: dict = {}
    exec(compile(guide_code(), str(GUIDE), "exec"), namespace)

    assert (tmp_path / "runs" / "tiny" / "G_A.safetensors").is_file()
    assert (tmp_path / "runs" / "tiny" / "G_B.safetensors").is_file()
    assert namespace["run"].step == 20
    with Image.open(tmp_path / "print.png") as translated, Image.open(tmp_path / "data/toy/testA/0000.png") as photo:
        assert translated.size == photo.size == (48, 48)
    for name in ("metrics.json", "index.html"):
        assert (tmp_path / "eval" / "tiny" / name).is_file()
    result = namespace["result"]
    assert set(result.directions) == {"AtoB", "BtoA"}
    for direction in result.directions.values():
        assert direction.n == 4
        measured = {k: v for k, v in direction.values.items() if v is not None}
        assert "cycle_l1" in measured
        assert all(math.isfinite(v) for v in measured.values()), measured

    # the file-level functions take a single path for a list of one
    tally = cyclestyle.translate_files(namespace["run"], "data/toy/testB", "prints", direction="BtoA", progress=False)
    assert (tally.translated, tally.skipped, tally.failed) == (4, 0, 0)
    assert sorted(p.name for p in (tmp_path / "prints").iterdir()) == [f"{i:04d}.png" for i in range(4)]


def test_stylize_files_writes_one_image_per_content_image(tmp_path, style_image):
    content = tmp_path / "photo.png"
    Image.new("RGB", (40, 24), (90, 140, 200)).save(content)
    seen = []
    written = cyclestyle.stylize_files(str(content), style_image, tmp_path / "out.png",
                                       cyclestyle.GatysConfig(size=32, steps=3, multiscale=False),
                                       vgg_weights="random", device="cpu", progress=False,
                                       on_written=lambda path, result: seen.append((path, result.vgg_source)))
    assert written == [tmp_path / "out.png"] and seen == [(tmp_path / "out.png", "random")]
    with Image.open(written[0]) as out:
        assert out.size == (32, 19)
