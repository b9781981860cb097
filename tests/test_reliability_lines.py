"""One clear line in the user's terms (issue 25, items 11 and 14): a skipped test image is named
on the terminal as in evaluate's report; a config value of the wrong type is shown as YAML writes
it, with what to write instead; an empty weights file, a CUT generator given to import-official
and an empty model name each say what they are."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from cyclestyle.cli import main

from .test_safety import tiny_run

OFFICIAL_PTH = Path(__file__).parent / "fixtures" / "official" / "resnet_6blocks_ngf8_net_G_A.pth"


def exit_code(*args: str) -> int:
    """``cyclestyle ARGS`` in this process: its exit status, a usage error's included."""
    try:
        return main(list(args))
    except SystemExit as e:
        return e.code


def error_lines(capsys) -> list[str]:
    """The lines the command wrote to stderr that are its own (not argparse's usage, nor bars)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("cyclestyle")]


# --------------------------------------------------------------------------------------------
# 11. A skipped test image is named on the terminal, as in index.html


def test_evaluate_names_a_skipped_test_image_on_the_terminal_as_in_its_report(toy_root, tmp_path, capsys,
                                                                             monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no Inception: the other metrics only
    data = tmp_path / "data"
    for domain in ("A", "B"):
        shutil.copytree(toy_root / f"test{domain}", data / f"test{domain}")
    Image.new("RGB", (1, 20000), "white").save(data / "testA" / "strip.png")  # 20000:1, past the 64:1 cap
    out = tmp_path / "eval"
    assert exit_code("evaluate", "--weights", str(tiny_run(tmp_path / "run")), "--data-root", str(data),
                     "--output", str(out), "--size", "32") == 0
    notes = [n for n in json.loads((out / "metrics.json").read_text())["notes"] if "strip.png" in n]
    assert len(notes) == 1 and notes[0].startswith("skipped") and "64:1" in notes[0]
    assert html.escape(notes[0]) in (out / "index.html").read_text()
    assert error_lines(capsys).count(f"cyclestyle: note: {notes[0]}") == 1
    assert json.loads((out / "metrics.json").read_text())["AtoB"]["n"] == 4  # the others were evaluated


# --------------------------------------------------------------------------------------------
# 14. A config value of the wrong type, shown as written, with what to write instead


@pytest.mark.parametrize("yaml_text, line", [
    ('model:\n  ngf: "8"\n',
     'model.ngf must be an integer; got "8", a number in quotes, which YAML reads as text: '
     'write 8 without quotes'),
    ("model:\n  ngf: 8.5\n", "model.ngf must be an integer; got 8.5"),
    ("model:\n  ngf: 64.0\n", "model.ngf must be an integer; got 64.0: write 64, without the decimal point"),
    ("model:\n  ngf: true\n", "model.ngf must be an integer; got true, a yes/no value"),
    ("model:\n  ngf: 1e3\n", "model.ngf must be an integer; got 1e3, which YAML reads as text: write 1000"),
    ("model:\n  out_channels: null\n",
     "model.out_channels must be an integer; got null (an empty value): give one, or leave "
     "model.out_channels out for its default, 3"),
    ("model:\n  out_channels:\n",  # an empty key reads as null
     "model.out_channels must be an integer; got null (an empty value): give one, or leave "
     "model.out_channels out for its default, 3"),
    ("model:\n  norm: null\n",
     'model.norm must be one of instance, batch, none; got null (an empty value): give one, or leave '
     'model.norm out for its default, "instance"'),
    ("data:\n  flip: null\n",
     "data.flip must be true or false; got null (an empty value): give one, or leave data.flip out for its "
     "default, true"),
    ("wandb:\n  tags: [monet, true]\n", 'wandb.tags[1] must be a string; got true (quote it for the text: "true")'),
])
def test_a_value_of_the_wrong_type_is_one_line_in_yaml_terms(tmp_path, capsys, yaml_text, line):
    """Issue 25, item 14: these said "got '8'", "got True" and "got None", Python's words for
    what the user wrote as "8", true and null, and nothing of what to write instead."""
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    assert exit_code("train", "--config", str(config)) == 2
    assert error_lines(capsys) == [f"cyclestyle: config error: {line}"]


@pytest.mark.parametrize("override, shown", [('model.ngf="8"', 'got "8", a number in quotes'),
                                             ("model.ngf=true", "got true, a yes/no value"),
                                             ("model.out_channels=null", "got null (an empty value)")])
def test_an_override_of_the_wrong_type_is_shown_as_typed(tmp_path, capsys, override, shown):
    config = tmp_path / "c.yaml"
    config.write_text("seed: 0\n")
    assert exit_code("train", "--config", str(config), "--set", override) == 2
    (line,) = error_lines(capsys)
    assert override.split("=")[0] in line and shown in line
    assert not any(word in line for word in ("True", "None", "'8'")), line


# --------------------------------------------------------------------------------------------
# 14. An empty weights file, a CUT generator, an empty model name


@pytest.mark.parametrize("command", ["import-official", "translate"])
@pytest.mark.parametrize("name", ["latest_net_G_A.pth", "G_A.safetensors"])
def test_an_empty_weights_file_is_named_as_empty(tmp_path, capsys, command, name):
    """Issue 25, item 14: an empty .pth said only "EOFError"."""
    empty = tmp_path / name
    empty.touch()
    if command == "import-official":
        args = ["import-official", str(empty), "--output", str(tmp_path / "G.safetensors")]
    else:
        photo = tmp_path / "in" / "a.png"
        photo.parent.mkdir()
        Image.new("RGB", (32, 32), "gray").save(photo)
        args = ["translate", "--weights", str(empty), "--direction", "AtoB", "--output", str(tmp_path / "out"),
                str(photo)]
    assert exit_code(*args) == 1
    (line,) = error_lines(capsys)
    assert str(empty) in line and "empty (0 bytes)" in line and "EOFError" not in line, line
    assert not (tmp_path / "G.safetensors").exists() and not (tmp_path / "out" / "a.png").exists()


def test_an_official_pth_given_to_translate_points_at_import_official(tmp_path, capsys):
    photo = tmp_path / "a.png"
    Image.new("RGB", (32, 32), "gray").save(photo)
    assert exit_code("translate", "--weights", str(OFFICIAL_PTH), "--direction", "AtoB",
                     "--output", str(tmp_path / "out"), str(photo)) == 1
    (line,) = error_lines(capsys)
    assert f"cyclestyle import-official {OFFICIAL_PTH} --output" in line and "deserializing" not in line, line


def cut_generator_state(ngf: int = 8, n_blocks: int = 2) -> dict[str, torch.Tensor]:
    """The state dict of the CUT code's ResnetGenerator with anti-aliasing (its default; Park et
    al. 2020, taesungp/contrastive-unpaired-translation models/networks.py): a stride-1 conv then
    a blur-pool (``Downsample``, whose 3×3 filter is a buffer, ``filt``) for each downsampling, so
    its residual blocks begin at model.12, and a blur upsampling (4×4 ``filt``) before each conv
    on the way up."""
    g = torch.Generator().manual_seed(0)

    def conv(out_ch, in_ch, k):
        return {"weight": torch.randn(out_ch, in_ch, k, k, generator=g) * 0.02, "bias": torch.zeros(out_ch)}

    layers = {1: conv(ngf, 3, 7), 4: conv(2 * ngf, ngf, 3), 7: {"filt": torch.ones(2 * ngf, 1, 3, 3) / 9},
              8: conv(4 * ngf, 2 * ngf, 3), 11: {"filt": torch.ones(4 * ngf, 1, 3, 3) / 9}}
    state = {f"model.{i}.{name}": t for i, layer in layers.items() for name, t in layer.items()}
    for b in range(n_blocks):
        for j in (1, 5):
            state |= {f"model.{12 + b}.conv_block.{j}.{k}": t for k, t in conv(4 * ngf, 4 * ngf, 3).items()}
    n = 12 + n_blocks
    up = {n: {"filt": torch.ones(4 * ngf, 1, 4, 4) / 4}, n + 1: conv(2 * ngf, 4 * ngf, 3),
          n + 4: {"filt": torch.ones(2 * ngf, 1, 4, 4) / 4}, n + 5: conv(ngf, 2 * ngf, 3), n + 9: conv(3, ngf, 7)}
    return state | {f"model.{i}.{name}": t for i, layer in up.items() for name, t in layer.items()}


def test_a_cut_generator_given_to_import_official_converts_unless_its_blur_filters_are_not_cut_s(tmp_path, capsys):
    """Issue 25, item 14: it was "its residual blocks are not model.10… in a row (found [12, 13])".
    Since issue 22 a CUT generator converts (tests/test_cut_reference.py); one whose fixed blur
    filters are not the reference's is refused in one line naming the tensor."""
    source = tmp_path / "latest_net_G.pth"
    torch.save(cut_generator_state(), source)  # box filters, not CUT's binomial ones
    out = tmp_path / "G.safetensors"
    assert exit_code("import-official", str(source), "--output", str(out)) == 1
    (line,) = error_lines(capsys)
    assert str(source) in line and "model.7.filt is not the reference's fixed blur filter" in line, line
    assert "in a row" not in line and not out.exists()
    from cyclestyle.models.antialias import Downsample, Upsample

    state = {k: ((Downsample if v.shape[-1] == 3 else Upsample)(v.shape[0]).filt if k.endswith(".filt") else v)
             for k, v in cut_generator_state().items()}
    torch.save(state, source)
    assert exit_code("import-official", str(source), "--output", str(out)) == 0 and out.is_file()


@pytest.mark.parametrize("name", ["", "  "])
def test_pretrained_with_an_empty_name_is_a_usage_error(tmp_path, capsys, monkeypatch, name):
    """Issue 25, item 14: ``pretrained ""`` printed the list and exited 0, as if no name were given."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert exit_code("pretrained", name) == 2
    err = capsys.readouterr()
    assert "NAME: is empty" in err.err and "--list" in err.err and err.out == ""
    assert not (tmp_path / "cache").exists()
