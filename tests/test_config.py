from pathlib import Path

import pytest
import yaml
from PIL import Image

from cyclestyle.config import Config, ConfigError, config_hash, config_to_dict, dump_config
from cyclestyle.training.configure import load_config
from cyclestyle.models import discriminator_spec, generator_spec


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for sub in ("trainA", "trainB"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    return tmp_path / "data"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_defaults_are_the_papers(root):
    from cyclestyle.training.methods import METHODS

    cfg = METHODS.get("cyclegan").with_defaults(load_config(None, [f"data.root={root}"]))  # as a new run fills it in
    assert (cfg.model.init_type, cfg.model.init_gain, cfg.model.no_antialias, cfg.model.no_antialias_up) == \
        ("normal", 0.02, True, True)
    assert cfg.data.decay_no_crop is False
    assert (cfg.train.lr, cfg.train.beta1, cfg.train.beta2) == (2e-4, 0.5, 0.999)
    assert (cfg.train.n_epochs, cfg.train.n_epochs_decay, cfg.train.pool_size, cfg.train.batch_size) == (100, 100, 50, 1)
    assert (cfg.loss.gan_mode, cfg.loss.lambda_a, cfg.loss.lambda_b, cfg.loss.lambda_identity) == ("lsgan", 10.0, 10.0, 0.5)
    assert (cfg.model.ngf, cfg.model.ndf, cfg.model.norm) == (64, 64, "instance")
    # 9 residual blocks and the 70×70 PatchGAN (3 layers), as the architectures' own defaults
    assert generator_spec(cfg.model).arguments["n_blocks"] == 9
    assert discriminator_spec(cfg.model, 3).arguments["n_layers_d"] == 3
    assert (cfg.data.load_size, cfg.data.crop_size) == (286, 256)


def test_required_keys_exist_and_overrides_apply(root, tmp_path):
    path = write(tmp_path, f"output_dir: out\nseed: 3\ndata:\n  root: {root}\ntrain:\n  lr: 1e-4\n")
    cfg = load_config(path, ["data.load_size=72", "data.crop_size=64", "model.ngf=8", "model.ndf=8",
                             "model.n_blocks=2", "train.max_steps=10", "train.batch_size=2",
                             "train.checkpoint_every=5", "output_dir=elsewhere", "seed=7"])
    assert (cfg.data.load_size, cfg.data.crop_size, cfg.model.ngf, cfg.model.ndf, cfg.model.n_blocks) == (72, 64, 8, 8, 2)
    assert (cfg.train.max_steps, cfg.train.batch_size, cfg.train.checkpoint_every) == (10, 2, 5)
    assert (cfg.output_dir, cfg.seed, cfg.train.lr) == ("elsewhere", 7, 1e-4)


def test_mixed_precision_no_survives_yaml_boolean(root):
    assert load_config(None, [f"data.root={root}", "train.mixed_precision=no"]).train.mixed_precision == "no"
    assert load_config(None, [f"data.root={root}", "train.mixed_precision=bf16"]).train.mixed_precision == "bf16"


@pytest.mark.parametrize("override, key", [
    ("train.learning_rate=1", "train.learning_rate"),
    ("modle.ngf=3", "modle"),
    ("train.batch_size=two", "train.batch_size"),
    ("train.batch_size=1.5", "train.batch_size"),
    ("data.flip=3", "data.flip"),
    ("loss.gan_mode=wgan", "loss.gan_mode"),
    ("train.max_steps=-5", "train.max_steps"),
    ("train.lr=0", "train.lr"),
    ("data.crop_size=300", "data.crop_size"),
    ("model.n_blocks=-1", "model.n_blocks"),
    ("train.beta1=1.5", "train.beta1"),
    ("train.decay_steps=5", "train.decay_steps"),
])
def test_bad_values_name_the_key(root, override, key):
    with pytest.raises(ConfigError) as info:
        load_config(None, [f"data.root={root}", override])
    assert key in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_data_folder_is_named(tmp_path):
    with pytest.raises(ConfigError, match="data.root .*nowhere"):
        load_config(None, [f"data.root={tmp_path / 'nowhere'}"])
    (tmp_path / "half" / "trainA").mkdir(parents=True)
    with pytest.raises(ConfigError, match="trainB"):
        load_config(None, [f"data.root={tmp_path / 'half'}"])


def test_hf_root_is_not_checked_on_disk():
    cfg = load_config(None, ["data.format=hf", "data.root=huggan/horse2zebra"])
    assert cfg.data.root == "huggan/horse2zebra"


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="run.yaml"):
        load_config(write(tmp_path, "data: [unclosed"))
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["no_equals_sign"])


def test_dump_round_trips(root, tmp_path):
    cfg = load_config(None, [f"data.root={root}", "train.max_steps=9", "model.upsample=resize_conv"])
    again = load_config(write(tmp_path, dump_config(cfg)))
    assert again == cfg and config_hash(again) == config_hash(cfg)
    assert isinstance(yaml.safe_load(dump_config(cfg)), dict)


PAPER_CONFIGS = {"monet2photo", "vangogh2photo", "ukiyoe2photo", "cezanne2photo", "horse2zebra"}


def test_every_shipped_config_parses(monkeypatch, tmp_path):
    configs = sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yaml"))
    assert {p.stem for p in configs} >= PAPER_CONFIGS | {"tiny"}
    style_image = tmp_path / "style.png"
    Image.new("RGB", (32, 32), (200, 40, 10)).save(style_image)
    for path in configs:
        raw = yaml.safe_load(path.read_text())
        # Their data folders (and the demo's true paintings) are not here; everything else must
        # validate.
        # fast_style's style image is named on the command line (style-train --style).
        style = [f"style.images=[{style_image}]", "style.vgg_weights=random"] if raw.get("method") == "fast_style" else []
        cfg = load_config(path, ["data.format=hf", f"eval.paired_truth={tmp_path}", *style])
        assert isinstance(cfg, Config)
        assert cfg.data.root == raw["data"]["root"]
        if path.stem in PAPER_CONFIGS:
            assert (cfg.data.crop_size, cfg.train.n_epochs, cfg.train.n_epochs_decay) == (256, 100, 100)
            assert (cfg.model.generator, cfg.model.discriminator) == ("resnet_9blocks", "basic")
            assert generator_spec(cfg.model).arguments["n_blocks"] == 9
    paintings = [load_config(p, ["data.format=hf"]) for p in configs if p.stem.endswith("2photo")]
    assert paintings and all(c.loss.lambda_identity == 0.5 for c in paintings)


def test_the_gpu_recipe_is_horse2zebra_with_speed_switches_only():
    """configs/horse2zebra_fast.yaml differs from the paper's run only where the recipe says."""
    configs = Path(__file__).resolve().parents[1] / "configs"
    paper, fast = (flatten(config_to_dict(load_config(configs / f"{name}.yaml", ["data.format=hf"])))
                   for name in ("horse2zebra", "horse2zebra_fast"))
    differing = {key for key in paper.keys() | fast.keys() if paper.get(key) != fast.get(key)}
    assert differing == {"output_dir", "data.num_workers", "train.batch_size", "train.lr_scaling",
                         "train.channels_last", "train.compile",
                         "train.checkpoint_every", "eval.every"}
    assert (fast["train.batch_size"], fast["train.lr_scaling"], fast["train.lr"]) == (4, "sqrt", paper["train.lr"])


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_dashboard_keys_have_defaults_and_the_yaml_key_log_with(root, tmp_path):
    cfg = load_config(None, [f"data.root={root}"])
    assert (cfg.wandb.project, cfg.wandb.entity, cfg.wandb.name, cfg.wandb.tags) == ("cyclestyle", None, None, [])
    assert (cfg.wandb.mode, cfg.wandb.log_model) == ("online", False)
    assert (cfg.log.with_, cfg.log.images_every, cfg.log.num_images) == ("wandb", 1000, 4)

    path = write(tmp_path, f"data:\n  root: {root}\nlog:\n  with: none\nwandb:\n  tags: [monet, baseline]\n")
    cfg = load_config(path, ["wandb.mode=offline", "wandb.entity=my-team", "log.num_images=2"])
    assert (cfg.log.with_, cfg.log.num_images, cfg.wandb.mode, cfg.wandb.entity) == ("none", 2, "offline", "my-team")
    assert cfg.wandb.tags == ["monet", "baseline"]
    assert load_config(None, [f"data.root={root}", "wandb.tags=[a, b]"]).wandb.tags == ["a", "b"]
    # Written back under the YAML key, and read again to the same config.
    dumped = yaml.safe_load(dump_config(cfg))
    assert dumped["log"]["with"] == "none" and "with_" not in dumped["log"]
    assert load_config(write(tmp_path, dump_config(cfg))) == cfg


@pytest.mark.parametrize("override, message", [
    ("log.with_=none", "unknown config key log.with_"),
    ("log.with=tensorboard", "log.with must be one of wandb, none"),
    ("wandb.mode=dryrun", "wandb.mode must be one of online, offline, disabled"),
    ("wandb.tags=monet", "wandb.tags must be a list"),
    ("wandb.tags=[monet, 3]", "wandb.tags[1] must be a string"),
    ("wandb.tags=['']", "wandb.tags[0] must be 1 to 64 characters"),
    ("wandb.project=my/project", "wandb.project must be a non-empty name"),
    ("wandb.entity=''", "wandb.entity must be a non-empty name"),
    ("wandb.log_model=yes please", "wandb.log_model must be true or false"),
    ("log.images_every=0", "log.images_every must be positive"),
    ("log.num_images=-1", "log.num_images must be positive"),
])
def test_bad_dashboard_values_name_the_key(root, override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        load_config(None, [f"data.root={root}", override])
    assert "\n" not in str(info.value)


def test_a_string_key_takes_the_set_text_as_given(root):
    """YAML would read ``runs/demo #2`` as ``runs/demo`` and a comment (issue 12)."""
    cfg = load_config(None, [f"data.root={root}", "output_dir=runs/demo #2", "wandb.name='quoted: yes'",
                             "wandb.entity=null", "model.ngf=8", "wandb.tags=[a, b]"])
    assert cfg.output_dir == "runs/demo #2" and cfg.wandb.name == "quoted: yes"
    assert cfg.wandb.entity is None and cfg.model.ngf == 8 and cfg.wandb.tags == ["a", "b"]


def _float_keys() -> list[str]:
    """Every float key of the shared sections and of the methods' own sections, by YAML name."""
    import dataclasses
    import typing

    from cyclestyle.training.methods import METHODS

    def walk(cls, prefix):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                yield from walk(tp, f"{prefix}{f.name}.")
            elif tp is float or float in typing.get_args(tp):
                yield f"{prefix}{f.name}"
    keys = [k for k in walk(Config, "") if not k.startswith("sections")]
    for method in {m.section: m for m in METHODS.values() if m.section}.values():
        keys += list(walk(method.options_type, f"{method.section}."))
    return keys


@pytest.mark.parametrize("value", [".nan", "nan", ".inf", "-.inf", "inf", "1e999", "1" + "0" * 400])
def test_every_float_key_must_be_finite(root, value):
    keys = _float_keys()
    assert {"train.lr", "loss.lambda_identity", "cut.nce_t", "cut.lambda_nce", "cut.lambda_gan",
            "style.tv_weight"} <= set(keys)
    for key in keys:
        with pytest.raises(ConfigError) as info:
            load_config(None, [f"data.root={root}", f"{key}={value}"], check_paths=False)
        message = str(info.value)
        assert key in message and "finite" in message and "\n" not in message, (key, message)


@pytest.mark.parametrize("override, key", [
    ("train.lr=.nan", "train.lr"),
    ("loss.lambda_identity=.inf", "loss.lambda_identity"),
    ("cut.nce_t=.nan", "cut.nce_t"),
    ("cut.lambda_nce=.inf", "cut.lambda_nce"),
    ("cut.lambda_gan=.nan", "cut.lambda_gan"),
    ("seed=-1", "seed"),
    (f"seed={2**64}", "seed"),
])
def test_train_refuses_a_non_finite_or_out_of_range_number_in_one_line(tiny_overrides, tmp_path, capsys, override,
                                                                        key):
    from cyclestyle import cli

    from .conftest import REPO

    method = ["--set", "method=cut"] if override.startswith("cut.") else []
    sets = [a for o in [*tiny_overrides, override] for a in ("--set", o)]
    assert cli.main(["train", "--config", str(REPO / "configs" / "tiny.yaml"), *method, *sets]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


def test_a_section_given_a_value_is_one_line_in_the_users_terms():
    from cyclestyle.config import read_config

    with pytest.raises(ConfigError) as error:
        read_config(None, ["train=5"])
    assert str(error.value) == "train must be a mapping, got '5'"
