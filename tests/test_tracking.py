"""The wandb dashboard, checked from wandb's own files: every run here is offline, none touches the network.

What a run logged is read back from its transaction log ``run-<id>.wandb`` (the file that
``wandb sync`` uploads) and from the media files beside it, not from a mirror written by us.
"""

import json
import os
import re
import signal
import struct
import zlib
from pathlib import Path

import pytest
import torch
import wandb
from PIL import Image
from safetensors.torch import load_file
from wandb.proto import wandb_internal_pb2

from cyclestyle.models import build_generator
from cyclestyle.training import tracking
from cyclestyle.run_folder import read_best
from cyclestyle.training.checkpoint import read_checkpoint
from cyclestyle.training.loop import TrainingInterrupted, train

pytestmark = pytest.mark.slow  # trainings logging to W&B offline: not in `test.sh --quick`

LOSSES = {"G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B"}

CYCLEGAN_NETWORKS = ("G_A", "G_B", "D_A", "D_B")  # what a CycleGAN checkpoint holds


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch, tmp_path):
    """No W&B variables from the caller, no API key anywhere, and wandb's caches under tmp_path.

    Without credentials an online run goes offline by itself, so nothing here can reach the network.
    wandb reads the environment once per process: tearing it down after each test lets the next
    test's variables count.
    """
    for name in list(os.environ):
        if name.startswith("WANDB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for name, sub in (("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data"), ("WANDB_CONFIG_DIR", "config")):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / sub))
    yield
    wandb.teardown()


# --------------------------------------------------------------------------------------------
# Reading a run's files


BLOCK = 32 * 1024
HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)  # identifier, magic, version
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list[wandb_internal_pb2.Record]:
    """Every record of a ``.wandb`` transaction log.

    The format is LevelDB's log format behind a 7-byte file header: 32 KiB blocks of chunks, each
    chunk a 7-byte header (CRC-32 of type byte + data, little-endian length, type) and its data;
    a record is one FULL chunk or FIRST, MIDDLE…, LAST; a block's last < 7 bytes are padding.
    """
    data = path.read_bytes()
    assert data[:7] == HEADER, f"{path} does not start with the W&B header: {data[:7]!r}"
    records, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:
            pos += BLOCK - pos % BLOCK
            continue
        crc, length, kind = struct.unpack_from("<IHB", data, pos)
        chunk = data[pos + 7:pos + 7 + length]
        assert kind in (FULL, FIRST, MIDDLE, LAST) and len(chunk) == length, f"{path}: bad chunk at byte {pos}"
        assert zlib.crc32(bytes([kind]) + chunk) == crc, f"{path}: checksum mismatch at byte {pos}"
        pos += 7 + length
        pending += chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    assert pos == len(data) and not pending, f"{path} ends inside a record"
    return records


def _nested(items) -> dict:
    """``{key or nested_key…: value_json}`` items as a nested dict of decoded values."""
    out: dict = {}
    for item in items:
        keys = list(item.nested_key) or [item.key]
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = json.loads(item.value_json)
    return out


class LoggedRun:
    """What one offline run folder holds, read from wandb's own files."""

    def __init__(self, folder: Path):
        self.folder = folder
        (log,) = folder.glob("run-*.wandb")
        self.records = read_records(log)
        (self.run,) = [r.run for r in self.records if r.WhichOneof("record_type") == "run"]
        self.config = _nested(self.run.config.update)
        for r in self.records:
            if r.WhichOneof("record_type") == "config":
                self.config |= _nested(r.config.update)
        self.history = [_nested(r.history.item) for r in self.records if r.WhichOneof("record_type") == "history"]
        self.artifacts = [r.artifact for r in self.records if r.WhichOneof("record_type") == "artifact"]
        self.metrics = [r.metric for r in self.records if r.WhichOneof("record_type") == "metric"]
        self.summary: dict = {}
        for r in self.records:
            if r.WhichOneof("record_type") == "summary":
                self.summary |= _nested(r.summary.update)
        (self.exit,) = [r.exit for r in self.records if r.WhichOneof("record_type") == "exit"]

    def steps_of(self, key: str) -> list[int]:
        return [row[tracking.STEP_METRIC] for row in self.history if key in row]


def offline_runs(run_dir: Path) -> list[LoggedRun]:
    """The offline runs under ``run_dir/wandb``, oldest first, once wandb has finished writing them.

    ``run.finish()`` only asks wandb's service process to close the run; the service writes the
    transaction log through a buffer and flushes it when it closes the run, some time after
    finish() returned (read at once, the file often holds nothing past its 7-byte header).
    ``wandb.teardown()`` waits for the service to exit, after which every log is complete.
    """
    wandb.teardown()
    return [LoggedRun(p) for p in sorted((run_dir / "wandb").glob("offline-run-*"))]


def lines(kind: str, capsys) -> list[str]:
    """Our one-line ``note:``/``warning:`` messages on stderr (between progress-bar redraws)."""
    return re.findall(rf"(?:^|\r)({kind}: [^\r\n]*)", capsys.readouterr().err, flags=re.MULTILINE)


# --------------------------------------------------------------------------------------------
# A run, end to end


def test_offline_run_logs_losses_lrs_speed_memory_panels_config_and_model(tiny_config, capsys):
    cfg = tiny_config("train.max_steps=6", "log.images_every=3", "log.num_images=3",
                      "wandb.log_model=true", "wandb.tags=[tiny, test]", "eval.every=3", "eval.metric=cycle_l1")
    run_dir = train(cfg)

    (logged,) = offline_runs(run_dir)
    # No credentials: offline by itself, and one line says how to upload it.
    assert lines("note", capsys) == [f"note: no W&B credentials (WANDB_API_KEY or `wandb login`): the dashboard "
                                     f"is logged offline; upload it later with: wandb sync {logged.folder}"]

    # The run: named after its folder, the resolved config with the YAML key names.
    assert (logged.run.project, logged.run.display_name) == ("cyclestyle", "run")
    assert list(logged.run.tags) == ["tiny", "test"]
    assert logged.config["train"]["max_steps"] == 6 and logged.config["model"]["n_blocks"] == 2
    assert logged.config["log"] == {"with": "wandb", "images_every": 3, "num_images": 3}
    assert logged.config["wandb"]["log_model"] is True

    # Numbers every train.log_every steps, against train/step.
    numbers = [row for row in logged.history if "loss/G_A" in row]
    assert [row["train/step"] for row in numbers] == [2, 4, 6]
    expected = {f"loss/{k}" for k in LOSSES} | {"lr/G", "lr/D", "perf/it_per_s", "perf/images_per_s",
                                                 "perf/rss_mib", "epoch", "train/step"}
    assert all(expected <= row.keys() for row in numbers)
    assert numbers[0]["lr/G"] == numbers[0]["lr/D"] == pytest.approx(cfg.train.lr)
    assert numbers[-1]["lr/G"] < numbers[0]["lr/G"]  # the second half decays
    assert all(row["perf/images_per_s"] == pytest.approx(row["perf/it_per_s"]) for row in numbers)  # batch 1
    # The same means as log.jsonl.
    jsonl = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["cycle_A"] for r in jsonl if "eval" not in r] == pytest.approx([row["loss/cycle_A"] for row in numbers])
    glob = [m for m in logged.metrics if m.glob_name == "*"]
    assert len(glob) == 1 and glob[0].step_metric == "train/step"

    # Panels every log.images_every steps and at the end: 3 held-out rows × (real, A→B, A→B→A, identity).
    assert logged.steps_of("images/A") == logged.steps_of("images/B") == [3, 6]
    panel = [row for row in logged.history if "images/A" in row][-1]["images/A"]
    assert panel["_type"] == "image-file" and "real A" in panel["caption"]
    png = logged.folder / "files" / panel["path"]
    assert panel["path"].startswith("media/images/") and png.is_file()
    with Image.open(png) as image:
        assert image.size == (4 * 32, 3 * 32)
        # First column: the first test image of A, as preprocess(train=False) prepares it.
        assert image.crop((0, 0, 32, 32)).tobytes() == held_out_crop(cfg, "A", 0).tobytes()

    # Held-out evaluations every eval.every steps, the same values as log.jsonl, and the best and
    # last results in the run's summary.
    evaluations = [row for row in logged.history if "eval/AtoB/cycle_l1" in row]
    assert [row["train/step"] for row in evaluations] == [3, 6]
    assert [row["eval/BtoA/cycle_l1"] for row in evaluations] == pytest.approx(
        [r["eval"]["BtoA/cycle_l1"] for r in jsonl if "eval" in r])
    assert all(row["eval/AtoB/n"] == 4 for row in evaluations)  # every test image of the toy set
    best = read_best(run_dir / "checkpoints")
    assert logged.summary["best/cycle_l1"] == pytest.approx(best["value"])
    assert logged.summary["best/step"] == best["step"] and logged.summary["last/step"] == 6
    assert logged.summary["eval/fid_protocol"] == "clean"  # which published FIDs these can be set beside
    # The final held-out grid: up to 16 test images (the toy set has 4) × 4 columns.
    (final,) = [row for row in logged.history if "final/A" in row]
    assert final["train/step"] == 6 and "final/B" in final
    with Image.open(logged.folder / "files" / final["final/A"]["path"]) as image:
        assert image.size == (4 * 32, 4 * 32)

    # The final generators as a model artifact.
    (artifact,) = logged.artifacts
    assert (artifact.type, artifact.name) == ("model", f"generators-{logged.run.run_id}")
    assert sorted(c.path for c in artifact.manifest.contents) == ["G_A.safetensors", "G_B.safetensors", "config.yaml"]
    assert logged.exit.exit_code == 0

    # The checkpoint knows the run, for --resume.
    _, state, _ = read_checkpoint(run_dir / "checkpoints" / "step-6")
    assert state["wandb_run_id"] == logged.run.run_id


def held_out_crop(cfg, domain: str, index: int) -> Image.Image:
    import random

    from cyclestyle.data import open_domains, preprocess, tensor_to_image

    source = open_domains(cfg.data, cfg.data.test_split)["AB".index(domain)]
    return tensor_to_image(preprocess(source.load(index, 3), cfg.data, random.Random(1), train=False))


def test_resume_continues_the_same_wandb_run_and_training_bitwise(tiny_config, tmp_path, monkeypatch):
    """Ctrl-C at step 4, --resume latest: one wandb run id in two offline folders (both sync into
    that run), steps going on from 4, and the weights of a run that never stopped nor logged."""
    from cyclestyle.training.methods import cyclegan as step_module

    straight = train(tiny_config(f"output_dir={tmp_path / 'straight'}", "train.max_steps=8", "log.with=none"))
    assert not (straight / "wandb").exists()

    cfg = tiny_config(f"output_dir={tmp_path / 'resumed'}", "train.max_steps=8", "log.images_every=2")
    real_discriminator_losses = step_module.discriminator_losses
    calls = {"n": 0}

    def ctrl_c_at_step_4(*args):
        calls["n"] += 1
        if calls["n"] == 4:
            os.kill(os.getpid(), signal.SIGINT)
        return real_discriminator_losses(*args)

    monkeypatch.setattr(step_module, "discriminator_losses", ctrl_c_at_step_4)
    with pytest.raises(TrainingInterrupted):
        train(cfg)
    monkeypatch.setattr(step_module, "discriminator_losses", real_discriminator_losses)
    resumed = train(cfg, resume="latest")

    first, second = offline_runs(resumed)
    assert first.run.run_id == second.run.run_id and second.run.resume
    assert (first.steps_of("loss/G_A"), second.steps_of("loss/G_A")) == ([2, 4], [6, 8])
    assert (first.steps_of("images/A"), second.steps_of("images/A")) == ([2, 4], [6, 8])
    assert first.exit.exit_code != 0 and second.exit.exit_code == 0  # the interrupted part shows as such
    for name in CYCLEGAN_NETWORKS:
        a = load_file(straight / "checkpoints" / "step-8" / f"{name}.safetensors")
        b = load_file(resumed / "checkpoints" / "step-8" / f"{name}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), name

    train(cfg, resume="latest")  # finished already: nothing to train, nothing to show
    assert len(offline_runs(resumed)) == 2


# --------------------------------------------------------------------------------------------
# Off, failing, overridden


def test_log_with_none_creates_no_wandb_folder(tiny_config):
    run_dir = train(tiny_config("train.max_steps=2", "log.with=none"))
    assert not (run_dir / "wandb").exists()
    _, state, _ = read_checkpoint(run_dir / "checkpoints" / "step-2")
    assert state["wandb_run_id"] is None


def test_wandb_failing_at_init_does_not_stop_training(tiny_config, monkeypatch, capsys):
    def broken_init(*args, **kwargs):
        raise RuntimeError("service exploded\nwith a second line")

    monkeypatch.setattr(wandb, "init", broken_init)
    run_dir = train(tiny_config("train.max_steps=2"))
    assert (run_dir / "G_A.safetensors").is_file() and not (run_dir / "wandb").exists()
    assert lines("warning", capsys) == ["warning: wandb could not start (RuntimeError: service exploded); "
                        "training continues without the dashboard"]


def test_wandb_failing_while_logging_warns_once_and_training_goes_on(tiny_config, monkeypatch, capsys):
    from wandb.sdk.wandb_run import Run

    def broken_log(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Run, "log", broken_log)
    run_dir = train(tiny_config("train.max_steps=6", "log.images_every=2"))
    assert (run_dir / "G_A.safetensors").is_file()
    assert lines("warning", capsys) == ["warning: wandb failed while logging step 2 (OSError: disk full); "
                        "training continues without the dashboard"]
    (logged,) = offline_runs(run_dir)
    assert logged.exit.exit_code != 0 and not logged.history


def test_environment_variables_win_over_the_config(tiny_config, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    monkeypatch.setenv("WANDB_TAGS", "env-tag")
    run_dir = train(tiny_config("train.max_steps=2", "wandb.project=from-config", "wandb.tags=[config-tag]",
                                "wandb.name=config-name"))
    (logged,) = offline_runs(run_dir)
    assert (logged.run.project, list(logged.run.tags)) == ("from-env", ["env-tag"])
    assert logged.run.display_name == "config-name"  # no WANDB_NAME: the config's

    wandb.teardown()
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run_dir = train(tiny_config("train.max_steps=2", f"output_dir={tmp_path / 'disabled'}", "wandb.mode=offline"))
    assert not (run_dir / "wandb").exists()


# --------------------------------------------------------------------------------------------
# Opening a run: credentials, fallback, processes (no training)


def test_credentials_are_found_without_the_network(monkeypatch, tmp_path):
    assert not tracking.has_credentials()
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {'k' * 40}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert tracking.has_credentials()
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert tracking.has_credentials()


def test_with_a_key_it_tries_online_with_a_time_limit_then_goes_offline(tiny_config, monkeypatch, capsys):
    """The online attempt is faked (it raises as an unreachable server would); the fallback is real."""
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    real_init, attempts = wandb.init, []

    def unreachable_online(*args, **kwargs):
        attempts.append(kwargs)
        if kwargs["mode"] == "online":
            raise wandb.errors.CommError("timed out after 60 seconds")
        return real_init(*args, **kwargs)

    monkeypatch.setattr(wandb, "init", unreachable_online)
    cfg = tiny_config()
    with tracking.open_tracker(cfg, Path(cfg.output_dir), is_main=True) as tracker:
        assert tracker.enabled
        tracker.log({"eval/fid": 12.5}, step=7)  # what another module (evaluate) may log
    online, offline = attempts
    assert online["settings"].init_timeout == tracking.INIT_TIMEOUT_S
    assert offline["mode"] == "offline" and offline["id"] == online["id"] == tracker.run_id
    (warning,) = lines("warning", capsys)
    assert warning.startswith("warning: wandb could not start online (CommError: timed out after 60 seconds): "
                              "the dashboard is logged offline; upload it later with: wandb sync ")
    (logged,) = offline_runs(Path(cfg.output_dir))
    assert logged.history[-1]["eval/fid"] == 12.5 and logged.history[-1]["train/step"] == 7


def test_only_the_main_process_logs(tiny_config):
    cfg = tiny_config()
    for tracker in (tracking.open_tracker(cfg, Path(cfg.output_dir), is_main=False),
                    tracking.open_tracker(tiny_config("log.with=none"), Path(cfg.output_dir), is_main=True)):
        assert not tracker.enabled and tracker.run_id is None
        tracker.log({"loss/G_A": 1.0}, step=1)
        tracker.finish()
    assert not (Path(cfg.output_dir) / "wandb").exists()


# --------------------------------------------------------------------------------------------
# The held-out panels


def test_panels_fall_back_to_training_images_and_render_in_eval_inference_mode(tiny_config, capsys):
    from cyclestyle.data import open_domains, tensor_to_image

    cfg = tiny_config("data.test_split=nope", "log.num_images=2")
    train_sources = open_domains(cfg.data, cfg.data.train_split)
    panels = tracking.HeldOutPanels.load(cfg, train_sources)
    (note,) = lines("note", capsys)
    assert "no usable 'nope' split" in note and "the first 2 'train' images" in note
    assert len(panels.images_a) == len(panels.images_b) == 2 and panels.source == "train"
    assert all(x.shape == (3, 32, 32) for x in panels.images_a + panels.images_b)

    g_a, g_b = build_generator(cfg.model), build_generator(cfg.model, reverse=True)
    seen = []
    g_a.register_forward_hook(lambda m, i, o: seen.append((m.training, torch.is_inference_mode_enabled())))
    grids = panels.render(g_a, g_b, torch.device("cpu"))
    assert g_a.training and g_b.training  # restored
    assert seen and all(mode == (False, True) for mode in seen)
    assert grids["images/A"].image.size == grids["images/B"].image.size == (4 * 32, 2 * 32)
    # Row 2 of the B grid: real b | G_B(b) | G_A(G_B(b)) | G_A(b), from the eval-mode generators.
    g_a.eval(), g_b.eval()
    b = panels.images_b[1].unsqueeze(0)
    with torch.no_grad():
        expected = [b, g_b(b), g_a(g_b(b)), g_a(b)]
    for column, x in enumerate(expected):
        cell = grids["images/B"].image.crop((32 * column, 32, 32 * column + 32, 64))
        assert cell.tobytes() == tensor_to_image(x[0]).tobytes(), column
    assert grids["images/B"].caption.startswith("train B images, per row: real B | B→A (G_B) | B→A→B | identity G_A(B)")

    # A method that trains A→B only: the A grid alone, real | translated.
    one_way = panels.render(g_a, None, torch.device("cpu"))
    assert list(one_way) == ["images/A"] and one_way["images/A"].image.size == (2 * 32, 2 * 32)
    a = panels.images_a[0].unsqueeze(0)
    with torch.no_grad():
        fake = g_a.eval()(a)
    assert one_way["images/A"].image.crop((32, 0, 64, 32)).tobytes() == tensor_to_image(fake[0]).tobytes()
    assert one_way["images/A"].caption.endswith("real A | A→B (G_A)")
    # A method that trains B→A only (pix2pix with pix2pix.direction: BtoA): the B grid alone.
    backwards = panels.render(None, g_b, torch.device("cpu"), names=(None, "G"))
    assert list(backwards) == ["images/B"] and backwards["images/B"].caption.endswith("real B | B→A (G)")


def test_panels_of_a_paired_method_end_each_row_with_the_true_target():
    """pix2pix's panels: input | output | truth in its direction, the truth the pair's other
    image; without ``truth`` (CycleGAN, CUT) the rows stay as they were."""
    from cyclestyle.config import ModelConfig
    from cyclestyle.data import tensor_to_image

    generator = torch.Generator().manual_seed(0)
    images_a, images_b = ([torch.rand(3, 16, 16, generator=generator) * 2 - 1 for _ in range(2)] for _ in range(2))
    model = ModelConfig(ngf=4, n_blocks=1)
    g_a, g_b = build_generator(model), build_generator(model, reverse=True)
    paired = tracking.HeldOutPanels(images_a, images_b, identity=True, source="test", truth=True)
    cpu = torch.device("cpu")

    def cell(panel, row, column):
        return panel.image.crop((16 * column, 16 * row, 16 * column + 16, 16 * row + 16)).tobytes()

    for forward, names, x, y, inputs, targets in ((g_a, ("G", None), "A", "B", images_a, images_b),
                                                  (g_b, (None, "G"), "B", "A", images_b, images_a)):
        way = {"A": (forward, None), "B": (None, forward)}[x]
        (panel,) = paired.render(*way, cpu, names=names).values()
        assert panel.image.size == (3 * 16, 2 * 16)
        assert panel.caption == f"test {x} images, per row: real {x} | {x}→{y} (G) | true {y}"
        with torch.no_grad():
            fake = forward.eval()(inputs[1].unsqueeze(0))[0]
        forward.train()
        for column, expected in enumerate((inputs[1], fake, targets[1])):
            assert cell(panel, 1, column) == tensor_to_image(expected).tobytes(), (x, column)

    both = paired.render(g_a, g_b, cpu)  # a two-way method on pairs: the truth after identity
    assert both["images/B"].image.size == (5 * 16, 2 * 16) and both["images/B"].caption.endswith("| true A")
    assert cell(both["images/B"], 0, 4) == tensor_to_image(images_a[0]).tobytes()
    unpaired = tracking.HeldOutPanels(images_a, images_b, identity=True, source="test")
    assert unpaired.render(g_a, None, cpu)["images/A"].image.size == (2 * 16, 2 * 16)
    assert unpaired.render(g_a, g_b, cpu)["images/A"].caption.endswith("real A | A→B (G_A) | A→B→A | identity G_B(A)")
