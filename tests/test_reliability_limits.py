"""Resources never spent on a lie, and one line instead of a traceback (issue 25, items 6, 7, 12
and 13): a weights file's metadata is checked against its tensors before its network is built; a
config or a file may not ask for more than the documented ceilings; ``push`` takes only ids the
hub takes, writes the run's text into the model card as text and builds its folder whole or not
at all; outputs that cannot be written and files that are not weights are one line each."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from cyclestyle.cli import main
from cyclestyle.config import Config, DataConfig, ModelConfig, dump_config
from cyclestyle.interop.official import official_names
from cyclestyle.models import GENERATORS, NetworkSpec, generator_spec
from cyclestyle.models import resnet
from cyclestyle.models.limits import MAX_NUMBERS, MAX_TENSORS, Budget, NetworkTooLarge, build_on_meta
from cyclestyle.models.weights import CheckpointError, load_weights, read_metadata, save_weights, weights_metadata

from .conftest import REPO
from .test_safety import OFFICIAL_PTH, one_error_line, photo, tiny_run  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread (conftest)


def weights_declaring(path: Path, **declared) -> Path:
    """A real tiny generator's tensors (ngf 8, one block) under metadata that declares ``declared``."""
    cfg = ModelConfig(ngf=8, n_blocks=1)
    spec = generator_spec(cfg)
    lie = dataclasses.replace(spec, arguments={**spec.arguments, **declared})
    save_weights(path, spec.build().state_dict(), weights_metadata(dataclasses.asdict(cfg), 5, lie))
    return path


def official_file(path: Path, state: dict) -> Path:
    torch.save(state, path)
    return path


# --------------------------------------------------------------------------------------------
# 6. Metadata is checked against the tensors before the network is built


def test_weights_declaring_a_huge_network_are_refused_before_it_is_built(tmp_path, capsys, monkeypatch):
    built = []
    original = resnet.ResnetBlock.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(resnet.ResnetBlock, "__init__", counting)
    weights = weights_declaring(tmp_path / "G.safetensors", n_blocks=10000)
    assert main(["translate", "--weights", str(weights), "--output", str(tmp_path / "out"),
                 str(photo(tmp_path / "p.png"))]) == 1
    one_error_line(capsys, str(weights), "n_blocks 10000", "tensors")
    # The file holds one block's tensors: the build stops within a few blocks of that, not at 10000.
    assert 0 < len(built) <= 16
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("ngf", [10**9, -8, 10**30])
def test_weights_with_a_huge_or_negative_ngf_are_one_line(tmp_path, capsys, ngf):
    weights = weights_declaring(tmp_path / "G.safetensors", ngf=ngf)
    assert main(["translate", "--weights", str(weights), "--direction", "AtoB", "--output", str(tmp_path / "out"),
                 str(photo(tmp_path / "p.png"))]) == 1
    one_error_line(capsys, str(weights), f"ngf {ngf}")


def test_weights_whose_metadata_matches_still_load(tmp_path, capsys):
    """The budget is the file's own size: a file that matches its metadata is built whole."""
    run = tiny_run(tmp_path / "run")
    assert main(["translate", "--weights", str(run), "--direction", "BtoA", "--output", str(tmp_path / "out"),
                 str(photo(tmp_path / "p.png"))]) == 0
    assert (tmp_path / "out" / "p.png").is_file()


def test_the_build_stops_at_the_first_tensor_past_its_budget():
    def linear() -> nn.Module:  # 2 tensors, 110 numbers
        return nn.Linear(10, 10)

    assert build_on_meta(linear, Budget(tensors=2, numbers=110)).weight.is_meta
    with pytest.raises(NetworkTooLarge, match="more than 1 tensors"):
        build_on_meta(linear, Budget(tensors=1, numbers=1000))
    with pytest.raises(NetworkTooLarge, match="more than 109 numbers"):
        build_on_meta(linear, Budget(tensors=10, numbers=109))
    # Empty slots (a bias-free convolution, instance norm) count for nothing.
    assert build_on_meta(lambda: nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.InstanceNorm2d(4)),
                         Budget(tensors=1, numbers=108))
    # The hooks are gone afterwards: an ordinary build is not watched.
    assert nn.Linear(2000, 2000).weight.numel() == 4 * 10**6


def test_the_default_ceilings_admit_the_papers_networks():
    for name in ("resnet_9blocks", "resnet_6blocks"):
        spec = NetworkSpec("generator", name, 3, 3, GENERATORS.get(name).arguments({"ngf": 64}))
        net = build_on_meta(spec.build)
        assert sum(p.numel() for p in net.parameters()) < MAX_NUMBERS
        assert len(net.state_dict()) < MAX_TENSORS


# --------------------------------------------------------------------------------------------
# 7. Sizes with bounds: a config's networks and a file's tensors


@pytest.mark.parametrize("overrides, key", [
    (["method=cut", "model.n_blocks=2", "cut.nce_layers=[0,4,8,12,13]", "cut.mlp_dim=1000000000"], "cut.mlp_dim"),
    (["model.n_blocks=20000"], "model.n_blocks=20000"),
    (["model.ngf=1000000"], "model.ngf=1000000"),
    (["model.ndf=1000000"], "model.ndf=1000000"),
    (["data.load_size=100000", "data.crop_size=64"], "data.load_size"),
])
def test_a_config_asking_for_more_than_the_ceilings_is_one_line_naming_the_key(toy_root, tmp_path, capsys,
                                                                               overrides, key):
    out = tmp_path / "run"
    sets = [f"data.root={toy_root}", f"output_dir={out}", "train.max_steps=2", *overrides]
    assert main(["train", "--config", str(REPO / "configs" / "tiny.yaml"),
                 *[arg for s in sets for arg in ("--set", s)]]) == 2
    one_error_line(capsys, key)
    assert not out.exists()


def test_a_pth_of_views_that_repeat_their_storage_is_refused_naming_the_tensor(tmp_path, capsys):
    """Every tensor of an official generator of ngf 2**20, as a stride-0 view of one number: a
    few kilobytes that declare terabytes."""
    spec = NetworkSpec("generator", "resnet", 3, 3, GENERATORS.get("resnet").arguments({"ngf": 2**20, "n_blocks": 6}))
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in spec.build().state_dict().items()}
    official = {ours: theirs for theirs, ours in official_names(6, False).items()}
    source = official_file(tmp_path / "G.pth", {official[k]: torch.zeros(1).expand(*s) for k, s in shapes.items()})
    assert source.stat().st_size < 20_000
    assert main(["import-official", str(source), "--output", str(tmp_path / "G.safetensors")]) == 1
    one_error_line(capsys, str(source), "model.1.weight", "stride")
    assert not (tmp_path / "G.safetensors").exists()


# --------------------------------------------------------------------------------------------
# 12. push: ids the hub takes, a card of text, a folder built whole


@pytest.mark.parametrize("repo_id", ["../../x", "a/b/c", "", "a" * 5000, "me/x\n<b>hi</b>", "me/x--y", "/x"])
def test_push_refuses_a_repo_id_the_hub_would_not_take(tmp_path, capsys, repo_id):
    run = tiny_run(tmp_path / "run")
    assert main(["push", "--weights", str(run), "--repo-id", repo_id, "--folder", str(tmp_path / "hub"),
                 "--folder-only"]) == 1
    line = one_error_line(capsys, "--repo-id")
    assert len(line) < 400
    assert not (tmp_path / "hub").exists()


def test_the_model_card_shows_the_runs_text_as_text(tmp_path, capsys):
    run = tiny_run(tmp_path / "run")
    hostile = "data`` <script>alert(1)</script>\n```\n# injected"
    cfg = Config(data=DataConfig(root=hostile), model=ModelConfig(ngf=8, n_blocks=1))
    (run / "config.yaml").write_text(dump_config(cfg))
    (run / "log.jsonl").write_text(json.dumps({"step": 5, "eval": {"AtoB/<img src=x onerror=alert(1)>": 1.5}}) + "\n")
    assert main(["push", "--weights", str(run), "--repo-id", "me/tiny", "--folder", str(tmp_path / "hub"),
                 "--folder-only"]) == 0
    lines = (tmp_path / "hub" / "README.md").read_text().splitlines()
    # A metric's name is table text: escaped, never markup.
    assert not any("<img" in line for line in lines)
    assert any("| &lt;img src=x onerror=alert(1)&gt; | 1.5 |" in line for line in lines)
    # The data folder is one code span on its line, between more backticks than it holds in a row.
    assert any(line.startswith("- data: ```` data`` <script>alert(1)</script> ``` # injected ```` (")
               for line in lines)
    # The resolved config stays inside its code block, whose fence outlasts the backticks in it.
    opening = lines.index("````yaml")
    closing = lines.index("````", opening + 1)
    for i, line in enumerate(lines):
        if "<script>" in line or "# injected" in line:
            assert line.startswith("- data: ") or opening < i < closing, line
    assert "# injected" in lines[opening:closing] or any("# injected" in line for line in lines[opening:closing])


def test_a_failed_hub_build_leaves_nothing_and_the_same_command_then_works(tmp_path, capsys):
    """G_B holds a NaN (its file reads, and G_A is written first): the build stops at G_B."""
    run = tiny_run(tmp_path / "run")
    good = load_weights(run / "G_B.safetensors")
    metadata = read_metadata(run / "G_B.safetensors")
    bad = dict(good)
    bad["stem.1.weight"] = good["stem.1.weight"].clone()
    bad["stem.1.weight"][0, 0, 0, 0] = float("nan")
    save_weights(run / "G_B.safetensors", bad, metadata)
    command = ["push", "--weights", str(run), "--repo-id", "me/tiny", "--folder", str(tmp_path / "hub"),
               "--folder-only"]
    assert main(command) == 1
    one_error_line(capsys, "G_B.safetensors", "stem.1.weight", "NaN")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no half-built folder, no temporary
    save_weights(run / "G_B.safetensors", good, metadata)
    assert main(command) == 0
    assert {"AtoB", "BtoA", "README.md", "config.json"} <= {p.name for p in (tmp_path / "hub").iterdir()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub", "run"]


def test_a_hub_build_that_fails_midway_can_be_run_again(tmp_path, capsys, monkeypatch):
    """G_B's file becomes unreadable after the run was opened (G_A is written by then)."""
    from cyclestyle.export import hub

    run = tiny_run(tmp_path / "run")
    real = hub.load_weights

    def failing(path):
        if Path(path).name == "G_B.safetensors":
            raise CheckpointError(f"corrupt weights file {path}: cut short")
        return real(path)

    monkeypatch.setattr(hub, "load_weights", failing)
    command = ["push", "--weights", str(run), "--repo-id", "me/tiny", "--folder", str(tmp_path / "hub"),
               "--folder-only"]
    assert main(command) == 1
    one_error_line(capsys, "G_B.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    monkeypatch.setattr(hub, "load_weights", real)
    assert main(command) == 0
    assert {"AtoB", "BtoA", "README.md", "config.json"} <= {p.name for p in (tmp_path / "hub").iterdir()}


def test_push_folder_naming_a_file_is_one_line(tmp_path, capsys):
    run = tiny_run(tmp_path / "run")
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["push", "--weights", str(run), "--repo-id", "me/tiny", "--folder", str(tmp_path / "notes.txt"),
                 "--folder-only"]) == 1
    one_error_line(capsys, "--folder", "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "mine"


# --------------------------------------------------------------------------------------------
# 13. One line instead of a traceback


def test_import_official_of_a_file_with_integer_keys_is_one_line(tmp_path, capsys):
    state = torch.load(OFFICIAL_PTH, weights_only=True)
    source = official_file(tmp_path / "G.pth", {i: v for i, v in enumerate(state.values())})
    assert main(["import-official", str(source), "--output", str(tmp_path / "G.safetensors")]) == 1
    one_error_line(capsys, str(source), "key '0'")


class _System:
    def __reduce__(self):
        return os.system, ("echo ran > ran.txt",)


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_pickle_calling_posix_system_is_refused_in_the_toolkits_own_line(tmp_path, capsys, protocol, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "G.pth"
    with open(source, "wb") as f:
        pickle.dump({"model.1.weight": _System()}, f, protocol=protocol)
    assert main(["import-official", str(source), "--output", str(tmp_path / "G.safetensors")]) == 1
    line = one_error_line(capsys, str(source), "posix.system", "refused")
    assert "weights_only" not in line and "\x1b" not in line
    assert not (tmp_path / "ran.txt").exists()


def test_outputs_under_a_file_are_one_line(tmp_path, capsys):
    run = tiny_run(tmp_path / "run")
    blocker = photo(tmp_path / "p.png")
    commands = [
        ["translate", "--weights", str(run), "--direction", "AtoB", "--output", str(blocker / "out"), str(blocker)],
        ["translate", "--weights", str(run), "--direction", "AtoB", "--output", str(blocker), str(blocker)],
        ["export", "--weights", str(run), "--format", "torchscript", "--output", str(blocker / "sub" / "g.pt")],
        ["import-official", str(OFFICIAL_PTH), "--output", str(blocker / "g.safetensors")],
        ["toy-data", "--output", str(blocker / "toy")],
        ["gatys", "--content", str(blocker), "--style", str(blocker), "--vgg-weights", "random", "--steps", "1",
         "--output", str(blocker / "out.png")],
    ]
    before = blocker.read_bytes()
    for command in commands:
        assert main(command) == 1, command
        one_error_line(capsys, str(blocker))
    assert blocker.read_bytes() == before


def test_an_output_onto_a_folder_is_refused_with_overwrite_too(tmp_path, capsys):
    run = tiny_run(tmp_path / "run")
    folder = tmp_path / "taken"
    (folder / "kept").mkdir(parents=True)
    for command in (["export", "--weights", str(run), "--format", "torchscript", "--output", str(folder), "--overwrite"],
                    ["import-official", str(OFFICIAL_PTH), "--output", str(folder), "--overwrite"]):
        assert main(command) == 1, command
        one_error_line(capsys, str(folder), "is a folder")
    assert [p.name for p in folder.iterdir()] == ["kept"]


@pytest.fixture
def read_only_folder(tmp_path) -> Path:
    """A folder this process cannot write in. chmod does not stop root, so as root (these tests
    run as root in CI containers) it is /sys, where the kernel refuses new files even to root;
    skipped where neither works."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if not os.access(folder, os.W_OK):
        yield folder
    else:
        folder = Path("/sys")
        try:
            (folder / "cyclestyle-probe").mkdir()
        except OSError:
            yield folder
        else:  # pragma: no cover (a kernel that lets us write there)
            (folder / "cyclestyle-probe").rmdir()
            pytest.skip("no folder here refuses this user's writes")
    (tmp_path / "read-only").chmod(0o755)


def test_outputs_into_a_read_only_folder_are_one_line(tmp_path, capsys, read_only_folder):
    run = tiny_run(tmp_path / "run")
    picture = photo(tmp_path / "p.png")
    for command in (
        ["translate", "--weights", str(run), "--direction", "AtoB", "--output", str(read_only_folder / "out"),
         str(picture)],
        ["translate", "--weights", str(run), "--direction", "AtoB", "--output", str(read_only_folder), str(picture)],
        ["import-official", str(OFFICIAL_PTH), "--output", str(read_only_folder / "g.safetensors")],
        ["import-official", str(OFFICIAL_PTH), "--output", str(read_only_folder / "sub" / "g.safetensors")],
        ["toy-data", "--output", str(read_only_folder / "toy")],
    ):
        code = main(command)
        assert code == 1, command
        one_error_line(capsys, str(read_only_folder))


def test_demo_output_dir_naming_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["demo", "--output-dir", str(tmp_path / "notes.txt"), "--data-dir", str(tmp_path / "data")]) == 1
    one_error_line(capsys, "--output-dir", "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_checkpoint_state_calling_posix_system_is_refused_in_one_line(tmp_path):
    from cyclestyle.training.checkpoint import load_state

    path = tmp_path / "training_state.pt"
    torch.save({"progress": _System()}, path)
    with pytest.raises(CheckpointError) as refused:
        load_state(path)
    line = str(refused.value)
    assert "\n" not in line and str(path) in line and "posix.system" in line and "weights_only" not in line
