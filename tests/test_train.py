"""End-to-end training: a tiny run learns, resumes bit for bit, and survives signals and failures."""

import errno
import json
import math
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cyclestyle.config import ConfigError
from cyclestyle.models.weights import CheckpointError, load_generator
from cyclestyle import run_folder
from cyclestyle.training import checkpoint as ckpt
from cyclestyle.training.checkpoint import read_checkpoint
from cyclestyle.training.loop import NonFiniteLoss, TrainingInterrupted, train

from .conftest import REPO, cli, few_cpus, kill_after_a_checkpoint, poison_cycle_loss_from_step, worker_warnings
from .multiprocess import torchrun

pytestmark = pytest.mark.slow  # end-to-end trainings, kills and resumes: not in `test.sh --quick`

CYCLEGAN_NETWORKS = ("G_A", "G_B", "D_A", "D_B")  # what a CycleGAN checkpoint holds


def final_weights(run_dir: Path, step: int) -> dict[str, dict[str, torch.Tensor]]:
    folder = run_dir / "checkpoints" / f"step-{step}"
    return {name: load_file(folder / f"{name}.safetensors") for name in CYCLEGAN_NETWORKS}


def assert_bitwise_equal(a, b):
    for name in CYCLEGAN_NETWORKS:
        assert a[name].keys() == b[name].keys()
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), f"{name}.{key} differs"


def test_tiny_run_writes_outputs_and_cycle_loss_falls(toy_root, tmp_path):
    from cyclestyle.training.configure import load_config

    cfg = load_config(REPO / "configs" / "tiny.yaml", [
        f"data.root={toy_root}", f"output_dir={tmp_path / 'run'}", "train.max_steps=120",
        "train.batch_size=4", "train.lr=0.001", "train.log_every=20", "train.checkpoint_every=60"])
    run = train(cfg)
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [20, 40, 60, 80, 100, 120]
    keys = {"G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B", "lr", "it_per_s"}
    assert keys <= records[0].keys()
    cycle = [r["cycle_A"] + r["cycle_B"] for r in records]
    assert min(cycle[-2:]) < 0.9 * cycle[0], cycle
    assert records[-1]["lr"] < records[0]["lr"]  # the second half decays
    # Final artefacts: generators usable without the training code, and the resolved config.
    assert (run / "config.yaml").is_file()
    g_a = load_generator(run / "G_A.safetensors")
    x = torch.rand(1, 3, 40, 44) * 2 - 1
    assert g_a(x).shape == x.shape
    assert load_generator(run / "G_B.safetensors")(x).shape == x.shape
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest", "step-120", "step-60"]


def test_more_data_workers_than_cpus_are_capped_for_cyclegan_too(tiny_config, monkeypatch, recwarn, capsys):
    cpus = few_cpus(monkeypatch)
    train(tiny_config("train.max_steps=2", f"data.num_workers={cpus + 1}"))
    assert worker_warnings(recwarn) == []
    assert f"data.num_workers={cpus + 1} but" in capsys.readouterr().err


def test_data_workers_serve_every_epoch_of_a_run_and_change_nothing(tiny_config, tmp_path, monkeypatch):
    """One DataLoader with persistent workers for the whole run (not one per epoch), and the same
    batches as without workers: the same computation, so the same weights bit for bit."""
    from torch.utils.data import DataLoader

    from cyclestyle.training import batches

    loaders = []

    class Counted(DataLoader):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            loaders.append(self)

    monkeypatch.setattr(batches, "DataLoader", Counted)
    few_cpus(monkeypatch)
    steps = "train.max_steps=30"  # 12 images per epoch: three epochs, the last one cut short
    with_workers = train(tiny_config(steps, "data.num_workers=2", f"output_dir={tmp_path / 'workers'}"))
    assert len(loaders) == 1 and loaders[0].persistent_workers
    without = train(tiny_config(steps, "data.num_workers=0", f"output_dir={tmp_path / 'main'}"))
    for name in ("G_A", "G_B"):
        a, b = (load_file(run / f"{name}.safetensors") for run in (with_workers, without))
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_generator_step_computes_no_discriminator_gradients(tiny_config, monkeypatch):
    """The discriminators are frozen while the generators learn (paper's alternating updates)."""
    from cyclestyle.training.methods import cyclegan as step_module

    seen = []
    real_cycle_losses = step_module.cycle_losses

    def spy(real, forward, backward, judge, *args):
        for p in judge.parameters():
            p.grad = None  # left from the previous discriminator step; it zeroes them itself
        terms, fake = real_cycle_losses(real, forward, backward, judge, *args)
        sum(terms.values()).backward(retain_graph=True)
        seen.append(all(p.grad is None for p in judge.parameters()))
        seen.append(all(p.grad is not None for p in forward.parameters()))
        for p in [*forward.parameters(), *backward.parameters()]:
            p.grad = None
        return terms, fake

    monkeypatch.setattr(step_module, "cycle_losses", spy)
    train(tiny_config("train.max_steps=2"))
    assert seen == [True] * 8


def test_kill_and_resume_equals_uninterrupted(tiny_config, tiny_overrides, tmp_path):
    """SIGKILL after a checkpoint, resume with --resume latest: bitwise the same final weights."""
    straight = train(tiny_config(f"output_dir={tmp_path / 'straight'}", "train.max_steps=24"))

    killed = tmp_path / "killed"
    args = ["train", "--config", str(REPO / "configs" / "tiny.yaml"),
            *sum([["--set", o] for o in tiny_overrides], []),
            "--set", f"output_dir={killed}", "--set", "train.max_steps=24"]
    stopped_at = kill_after_a_checkpoint(args, killed)
    assert stopped_at.name != "step-24"

    result = subprocess.run(cli(*args, "--resume", "latest"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"resumed from {stopped_at}" in result.stdout + result.stderr
    assert_bitwise_equal(final_weights(straight, 24), final_weights(killed, 24))
    assert load_file(straight / "G_A.safetensors").keys() == load_file(killed / "G_A.safetensors").keys()


def test_ctrl_c_mid_epoch_with_full_pools_resumes_bitwise(tiny_config, tmp_path, monkeypatch):
    """Ctrl-C at step 8 (inside the first 12-image epoch, history pools of 3 already full), then
    --resume latest: bitwise the same as never stopping, two epochs later."""
    from cyclestyle.training.methods import cyclegan as step_module

    straight = train(tiny_config(f"output_dir={tmp_path / 'a'}", "train.max_steps=20", "train.pool_size=3"))

    cfg = tiny_config(f"output_dir={tmp_path / 'b'}", "train.max_steps=20", "train.pool_size=3")
    real_discriminator_losses = step_module.discriminator_losses
    calls = {"n": 0}

    def press_ctrl_c_at_step_8(*args):
        calls["n"] += 1
        if calls["n"] == 8:
            os.kill(os.getpid(), signal.SIGINT)
        return real_discriminator_losses(*args)

    monkeypatch.setattr(step_module, "discriminator_losses", press_ctrl_c_at_step_8)
    with pytest.raises(TrainingInterrupted) as info:
        train(cfg)
    assert info.value.step == 8 and info.value.signum == signal.SIGINT
    _, state, processes = read_checkpoint(Path(cfg.output_dir) / "checkpoints" / "step-8")
    assert state["progress"] == {"step": 8, "epoch": 0, "position": 8}
    assert len(processes[0]["pools"]["A"]["images"]) == 3

    monkeypatch.setattr(step_module, "discriminator_losses", real_discriminator_losses)
    resumed = train(cfg, resume="latest")
    _, state20, _ = read_checkpoint(resumed / "checkpoints" / "step-20")
    assert state20["progress"] == {"step": 20, "epoch": 1, "position": 8}
    assert_bitwise_equal(final_weights(straight, 20), final_weights(resumed, 20))


def test_sigterm_saves_a_loadable_checkpoint_and_exits_cleanly(tiny_overrides, tmp_path):
    run = tmp_path / "term"
    args = ["train", "--config", str(REPO / "configs" / "tiny.yaml"),
            *sum([["--set", o] for o in tiny_overrides], []),
            "--set", f"output_dir={run}", "--set", "train.max_steps=100000", "--set", "train.checkpoint_every=100000"]
    proc = subprocess.Popen(cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "log.jsonl").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and "--resume latest" in err
    assert "Traceback" not in err
    folder = run_folder.resolve_checkpoint(run / "checkpoints", "latest")
    networks, state, processes = read_checkpoint(folder)
    assert folder.name == f"step-{state['progress']['step']}"
    assert state["progress"]["step"] >= 2
    g = load_generator(folder / "G_A.safetensors")
    assert g(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp")]


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tiny_config, monkeypatch):
    poison_cycle_loss_from_step(monkeypatch, 7)
    cfg = tiny_config()
    with pytest.raises(NonFiniteLoss, match=r"nan at step 7.*step-4"):
        train(cfg)
    networks, state, _ = read_checkpoint(Path(cfg.output_dir) / "checkpoints" / "step-4")
    assert state["progress"]["step"] == 4
    assert all(torch.isfinite(t).all() for net in networks.values() for t in net.values())
    assert not (Path(cfg.output_dir) / "checkpoints" / "step-6").exists()


def test_full_disk_during_checkpoint_keeps_previous_one(tiny_config, monkeypatch):
    cfg = tiny_config()
    real_save = ckpt.save_weights
    written = {"n": 0}

    def flaky(path, state_dict, metadata=None):
        written["n"] += 1
        if written["n"] > 4:  # the second checkpoint fails half-way
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(path, state_dict, metadata)

    monkeypatch.setattr(ckpt, "save_weights", flaky)
    with pytest.raises(CheckpointError, match="No space left on device.*step-4"):
        train(cfg)
    checkpoints = Path(cfg.output_dir) / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["latest", "step-4"]
    read_checkpoint(checkpoints / "step-4")


def test_checkpoint_files_keep_their_keys_and_older_ones_resume(tiny_config):
    """TrainingState and ProcessState write exactly the keys the loop always wrote; a checkpoint
    from before wandb_run_id, mixed_precision and lr_state existed still resumes."""
    cfg = tiny_config("train.max_steps=4", "train.checkpoint_every=2")
    run = train(cfg)
    folder = run / "checkpoints" / "step-2"
    state = ckpt.load_state(folder / "training_state.pt")
    assert list(state) == ["progress", "optimizers", "scalers", "data", "lr_factor", "num_processes",
                           "config_hash", "reason", "wandb_run_id", "mixed_precision", "lr_state"]
    assert list(state["progress"]) == ["step", "epoch", "position"]
    assert list(state["data"]) == ["n_a", "n_b", "seed", "order"]
    assert list(ckpt.load_state(folder / "process-0.pt")) == ["rng", "pools", "weights_digest"]
    again = ckpt.TrainingState.from_dict(state).to_dict()
    assert list(again) == list(state) and again["progress"] == state["progress"]
    assert torch.equal(again["data"]["order"], state["data"]["order"])

    straight = final_weights(run, 4)
    del state["wandb_run_id"], state["mixed_precision"], state["lr_state"]
    torch.save(state, folder / "training_state.pt")
    shutil.rmtree(run / "checkpoints" / "step-4")
    (run / "checkpoints" / "latest").write_text("step-2\n")
    train(cfg, resume="latest")
    assert_bitwise_equal(straight, final_weights(run, 4))


def test_refuses_to_overwrite_a_run_and_rejects_corrupt_checkpoints(tiny_config):
    cfg = tiny_config("train.max_steps=4")
    run = train(cfg)
    with pytest.raises(ConfigError, match="--resume latest"):
        train(cfg)
    (run / "checkpoints" / "step-4" / "G_A.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match=r"step-4/G_A\.safetensors"):
        train(cfg, resume="latest")
    (run / "checkpoints" / "step-4" / "training_state.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="training_state.pt"):
        ckpt.load_state(run / "checkpoints" / "step-4" / "training_state.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        train(cfg, resume=str(run / "checkpoints" / "step-999"))


def test_a_new_run_refuses_a_folder_that_keeps_an_earlier_runs_best(tiny_config):
    """Step checkpoints deleted, checkpoints/best kept: a new run's first evaluation would replace it."""
    cfg = tiny_config()
    best = Path(cfg.output_dir) / "checkpoints" / "best"
    best.mkdir(parents=True)
    (best / "G_A.safetensors").write_bytes(b"an earlier run's generator")
    with pytest.raises(ConfigError, match="best generators of an earlier run") as e:
        train(cfg)
    assert str(best) in str(e.value) and "\n" not in str(e.value)
    assert not (Path(cfg.output_dir) / "config.yaml").exists()
    assert (best / "G_A.safetensors").read_bytes() == b"an earlier run's generator"


def test_resume_after_finishing_is_a_no_op(tiny_config):
    cfg = tiny_config("train.max_steps=4")
    run = train(cfg)
    before = load_file(run / "G_A.safetensors")
    train(cfg, resume="latest")
    after = load_file(run / "G_A.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_cli_help_and_config_errors_are_one_line(tmp_path):
    out = subprocess.run(cli("train", "--help"), capture_output=True, text=True)
    assert out.returncode == 0 and "--resume" in out.stdout and "--set" in out.stdout
    bad = subprocess.run(cli("train", "--config", str(REPO / "configs" / "tiny.yaml"), "--set", "train.lr=fast"),
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "train.lr" in bad.stderr
    missing = subprocess.run(cli("train", "--config", str(REPO / "configs" / "tiny.yaml"),
                                 "--set", f"data.root={tmp_path / 'absent'}"), capture_output=True, text=True)
    assert missing.returncode == 2 and "absent" in missing.stderr and "Traceback" not in missing.stderr


def test_cycle_losses_sum_to_the_papers_full_objective():
    """Both halves together are eq. 3 of the paper plus the identity term of section 5.2, with
    λ_A, λ_B and λ_idt where the reference implementation puts them."""
    import torch.nn.functional as F

    from cyclestyle.models import PatchDiscriminator, ResnetGenerator
    from cyclestyle.training.methods.cyclegan import cycle_losses

    torch.manual_seed(0)
    g_a, g_b = ResnetGenerator(ngf=4, n_blocks=1), ResnetGenerator(ngf=4, n_blocks=1)
    d_a, d_b = PatchDiscriminator(ndf=4), PatchDiscriminator(ndf=4)
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    lam_a, lam_b, lam_idt = 10.0, 7.0, 0.5
    from_a, _ = cycle_losses(a, g_a, g_b, d_a, lam_a, lam_a * lam_idt, "lsgan")
    from_b, _ = cycle_losses(b, g_b, g_a, d_b, lam_b, lam_b * lam_idt, "lsgan")
    ours = sum(from_a.values()) + sum(from_b.values())
    paper = (((d_a(g_a(a)) - 1) ** 2).mean() + ((d_b(g_b(b)) - 1) ** 2).mean()
             + lam_a * F.l1_loss(g_b(g_a(a)), a) + lam_b * F.l1_loss(g_a(g_b(b)), b)
             + lam_idt * (lam_b * F.l1_loss(g_a(b), b) + lam_a * F.l1_loss(g_b(a), a)))
    assert ours.item() == pytest.approx(paper.item(), rel=1e-6)


def test_trains_from_a_local_hugging_face_dataset(toy_root, tmp_path, tiny_config, monkeypatch):
    """A huggan-style table (imageA/imageB, the smaller domain repeated) saved with save_to_disk."""
    import datasets
    from PIL import Image

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    a = [Image.open(p).convert("RGB") for p in sorted((toy_root / "trainA").glob("*.png"))[:6]]
    b = [Image.open(p).convert("RGB") for p in sorted((toy_root / "trainB").glob("*.png"))[:4]]
    table = datasets.Dataset.from_dict(
        {"imageA": a, "imageB": [b[i % 4] for i in range(6)]},
        features=datasets.Features({"imageA": datasets.Image(), "imageB": datasets.Image()}))
    datasets.DatasetDict({"train": table}).save_to_disk(str(tmp_path / "hf"))
    run = train(tiny_config("data.format=hf", f"data.root={tmp_path / 'hf'}", "train.max_steps=6"))
    _, state, _ = read_checkpoint(run / "checkpoints" / "step-6")
    assert (state["data"]["n_a"], state["data"]["n_b"]) == (6, 4)  # B de-duplicated


def test_grayscale_domains_train_with_one_channel(tiny_config):
    run = train(tiny_config("model.in_channels=1", "model.out_channels=1", "train.max_steps=2"))
    g = load_generator(run / "G_A.safetensors")
    assert g(torch.zeros(1, 1, 32, 32)).shape == (1, 1, 32, 32)


def test_grayscale_to_colour_trains_evaluates_draws_panels_and_translates(tiny_config, toy_root, tmp_path):
    """in_channels 1, out_channels 3 (no identity loss, as validation requires): domain B is read
    in colour. It was read with in_channels, and the first step crashed in D_A."""
    from PIL import Image

    from cyclestyle.cli import main
    from cyclestyle.data import open_domains
    from cyclestyle.training.tracking import HeldOutPanels

    cfg = tiny_config("model.in_channels=1", "model.out_channels=3", "loss.lambda_identity=0", "train.max_steps=4",
                      "eval.every=2", "eval.metric=cycle_l1", "eval.num_images=2")
    run = train(cfg)
    evaluations = [json.loads(line)["eval"] for line in (run / "log.jsonl").read_text().splitlines()
                   if "eval" in json.loads(line)]
    assert len(evaluations) == 2 and all({"AtoB/cycle_l1", "BtoA/cycle_l1"} <= e.keys() for e in evaluations)
    assert (run / "checkpoints" / "best" / "G_A.safetensors").is_file()

    g_a, g_b = load_generator(run / "G_A.safetensors"), load_generator(run / "G_B.safetensors")
    panels = HeldOutPanels.load(cfg, open_domains(cfg.data, cfg.data.train_split, 1, 3))
    drawn = panels.render(g_a, g_b, torch.device("cpu"))
    assert drawn["images/A"].image.size == drawn["images/B"].image.size == (3 * 32, 4 * 32)  # no identity column

    for direction, domain, mode in (("AtoB", "testA", "RGB"), ("BtoA", "testB", "L")):
        out = tmp_path / direction
        assert main(["translate", "--weights", str(run), "--direction", direction, "--output", str(out),
                     str(toy_root / domain)]) == 0
        translated = sorted(out.glob("*.png"))
        assert len(translated) == 4
        with Image.open(translated[0]) as image:
            assert image.mode == mode and image.size == (48, 48)

    # and `cyclestyle evaluate` reads A in grey and B in colour, as the generators take them
    assert main(["evaluate", "--weights", str(run), "--data-root", str(toy_root), "--output",
                 str(tmp_path / "eval")]) == 0
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert result["AtoB"]["n"] == result["BtoA"]["n"] == 4


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_paths_run_on_cpu(tiny_overrides, tmp_path, precision):
    """Run in a subprocess: accelerate fixes the precision once per process."""
    run = tmp_path / precision
    args = ["train", "--config", str(REPO / "configs" / "tiny.yaml"),
            *sum([["--set", o] for o in tiny_overrides], []), "--set", f"output_dir={run}",
            "--set", f"train.mixed_precision={precision}", "--set", "train.max_steps=3"]
    result = subprocess.run(cli(*args), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    _, state, _ = read_checkpoint(run / "checkpoints" / "step-3")
    assert ("scale" in state["scalers"]["G"]) == (precision == "fp16")  # one scaler per optimizer
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["cycle_A"]) for r in records)


def test_two_process_torchrun_on_cpu_forms_one_gloo_group(tiny_overrides, tmp_path):
    """Without GPUs, a 2-process launch must train as one run, not as two runs writing one folder."""
    run = tmp_path / "ddp"
    args = ["-m", "cyclestyle", "train", "--config", str(REPO / "configs" / "tiny.yaml"),
            *sum([["--set", o] for o in tiny_overrides], []), "--set", f"output_dir={run}",
            "--set", "train.max_steps=4"]
    result = subprocess.run(torchrun(2) + args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (result.stdout + result.stderr).count("done: 4 steps") == 1  # only the main process speaks
    folder = run / "checkpoints" / "step-4"
    assert sorted(p.name for p in folder.glob("process-*.pt")) == ["process-0.pt", "process-1.pt"]
    _, state, processes = read_checkpoint(folder)
    assert state["num_processes"] == 2 and state["progress"]["position"] == 8  # 4 steps × 2 processes × batch 1
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [2, 4]


def test_a_resume_with_other_model_settings_names_the_network_and_both_shapes(tiny_config, tmp_path, capsys):
    from cyclestyle.cli import main

    train(tiny_config("train.max_steps=2", "train.checkpoint_every=2"))
    cfg = tiny_config("train.max_steps=4", "model.ngf=16")  # the run was trained with ngf 8
    code = main(["train", "--config", str(REPO / "configs" / "tiny.yaml"), "--resume", "latest",
                 *sum([["--set", o] for o in (f"data.root={cfg.data.root}", f"output_dir={cfg.output_dir}",
                                              "model.n_blocks=2", "train.max_steps=4", "model.ngf=16",
                                              "train.mixed_precision=no")], [])])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and "step-2/G_A.safetensors does not fit the network the config builds" in err
    assert "in the checkpoint and" in err and "tensors differ" in err and "its config.yaml" in err
