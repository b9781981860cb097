"""The ``cyclestyle`` command line: one program, one subcommand per job."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

# style-train's default config, beside the package in a source checkout (as the demo's)
FAST_STYLE_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "fast_style.yaml"

EPILOG_TRAIN = """\
examples:
  cyclestyle train --config configs/tiny.yaml --set data.root=data/toy
  cyclestyle train --config configs/monet2photo.yaml --set train.batch_size=4 --set train.lr_scaling=sqrt  # lr ×2
  cyclestyle train --config configs/horse2zebra_fast.yaml          # one GPU: bf16, channels_last, compile
  cyclestyle train --config configs/monet2photo.yaml --resume latest      # continue after a stop
  cyclestyle train --config configs/horse2zebra_cut.yaml                   # CUT (configs/horse2zebra_fastcut.yaml)
  cyclestyle train --config configs/monet2photo.yaml --set train.compile=default   # see the README's "Speed"
  accelerate launch --multi_gpu --num_processes 4 -m cyclestyle train --config configs/horse2zebra.yaml

Ctrl-C (SIGINT) or SIGTERM finishes the current step (several GPU processes: the steps up to the
next log record), writes a checkpoint and exits; run the same command with --resume latest to
continue exactly where it stopped.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cyclestyle",
        description="Unpaired image-to-image translation with CycleGAN (Zhu et al. 2017) and CUT (Park et al. "
                    "2020), beside neural style transfer (Gatys et al.; Johnson et al.'s fast networks).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = sub.add_parser(
        "train", help="train a translator on two unpaired image folders (CycleGAN; CUT or FastCUT with method:)",
        description="Train CycleGAN as the paper does: two ResNet generators and two 70×70 PatchGAN "
                    "discriminators with adversarial, cycle-consistency and identity losses. Writes "
                    "checkpoints to OUTPUT_DIR/checkpoints/, a loss log to OUTPUT_DIR/log.jsonl and, at "
                    "the end, OUTPUT_DIR/G_A.safetensors (A→B) and G_B.safetensors (B→A). The config's "
                    "method: key switches to CUT or FastCUT (one generator, A→B: G_A.safetensors only), "
                    "with everything else the same.",
        epilog=EPILOG_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--config", required=True, metavar="PATH",
                       help="YAML run config, e.g. configs/tiny.yaml (see the README's configuration reference)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one config value, e.g. --set train.lr=1e-4 (repeatable)")
    train.add_argument("--resume", metavar="latest|PATH",
                       help="continue a run: 'latest' (the newest checkpoint in output_dir, or a fresh "
                            "start if there is none) or a checkpoints/step-N folder")

    _add_style_train(sub)
    _add_translate(sub)
    _add_evaluate(sub)
    _add_gatys(sub)
    _add_compare(sub)
    _add_demo(sub)
    _add_import_official(sub)
    _add_pretrained(sub)
    _add_export(sub)
    _add_push(sub)

    toy = sub.add_parser(
        "toy-data", help="write a small synthetic two-domain dataset (for quick checks, no download)",
        description="Write ROOT/{trainA,trainB,testA,testB} of synthetic images: domain A has smooth "
                    "shaded shapes, domain B the same kind of scenes posterised and striped like a "
                    "print. Deterministic for a given --seed; takes a second.")
    toy.add_argument("--output", required=True, metavar="ROOT", help="folder to create")
    toy.add_argument("--n-train", type=int, default=32, help="training images per domain (default 32)")
    toy.add_argument("--n-test", type=int, default=8, help="held-out images per domain (default 8)")
    toy.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    toy.add_argument("--seed", type=int, default=0)
    return parser


def _add_style_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "style-train", help="train a fast style network (Johnson et al. 2016): one network per style, one pass per image",
        description="Train the feed-forward style network of Johnson, Alahi and Fei-Fei (ECCV 2016), with instance\n"
                    "norm, on a collection of photos: its output keeps each photo's content (VGG-16 relu2_2) and\n"
                    "takes the style images' Gram matrices (relu1_2, relu2_2, relu3_3, relu4_3). Trained once (the\n"
                    "paper: 40k steps of 4 COCO photos at 256 px), it stylises a photo of any size in one forward\n"
                    "pass: cyclestyle translate --weights OUTPUT. Same machinery as `cyclestyle train`:\n"
                    "checkpoints, --resume, accelerate, the wandb dashboard, OUTPUT/G_A.safetensors at the end.\n\n"
                    "--content is a folder of photos (searched recursively; with trainA/ and testA/ inside, those,\n"
                    "testA held out for the dashboard's panels) or a Hugging Face dataset (id or local copy; its\n"
                    "'image' column, --set data.image_column=… for another).",
        epilog="examples:\n"
               "  cyclestyle style-train --style starry_night.jpg --content data/coco/train2014 --output runs/starry\n"
               "  cyclestyle style-train --style starry_night.jpg --content data/coco/train2014 --output runs/starry \\\n"
               "      --resume latest                                   # continue after a stop\n"
               "  cyclestyle style-train --style wave.jpg --content my_photos/ --output runs/wave \\\n"
               "      --set train.max_steps=5000 --set style.style_weight=5e10\n"
               "  accelerate launch --multi_gpu --num_processes 4 -m cyclestyle style-train --style wave.jpg \\\n"
               "      --content data/coco/train2014 --output runs/wave --set train.mixed_precision=bf16\n\n"
               "The losses need torchvision's VGG-16 ImageNet weights (vgg16-397923af.pth) in torch's hub cache\n"
               "(~/.cache/torch/hub/checkpoints/) or --set style.vgg_weights=PATH; --set style.vgg_weights=random\n"
               "runs offline, for tests and demos only (it learns no real style).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", nargs="+", required=True, metavar="IMG",
                   help="style image(s); several: the network learns their mean Gram matrices")
    p.add_argument("--content", required=True, metavar="DIR|HF-ID",
                   help="the photos to train on: a folder (recursively) or a Hugging Face dataset id or copy")
    p.add_argument("--output", required=True, metavar="RUN", help="the run folder (output_dir)")
    p.add_argument("--config", default=str(FAST_STYLE_CONFIG), metavar="PATH",
                   help="YAML run config (default configs/fast_style.yaml: the paper's settings)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. --set train.max_steps=5000 (repeatable)")
    p.add_argument("--resume", metavar="latest|PATH",
                   help="continue a run: 'latest' (the newest checkpoint in --output, or a fresh start if there "
                        "is none) or a checkpoints/step-N folder")


def _add_translate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "translate", help="translate images of any size with a trained generator",
        description="Translate image files, folders (recursively) or globs with a trained generator. "
                    "Each output keeps its input's exact size and mirrors its name under --output. "
                    "Large images are translated in tiles whose instance-norm statistics are those of "
                    "the whole image, so the result matches a full-frame translation without its memory.",
        epilog="examples:\n"
               "  cyclestyle translate --weights runs/monet2photo --direction BtoA --output out/ photos/\n"
               "  cyclestyle translate --weights runs/monet2photo/G_B.safetensors --direction BtoA "
               "--output out/ --tile 512 --overlap 64 scan.tif\n"
               "  cyclestyle translate --weights runs/starry --output out/ photos/        # a style-train run\n"
               "  cyclestyle translate --weights runs/starry --output out/ --style-strength 0.6 --preserve-color photo.jpg",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("--weights", required=True, metavar="W",
                   help="a run directory, a checkpoints/step-N folder, a generator .safetensors file, a model hub "
                        "folder or hf://USER/NAME (cyclestyle push)")
    p.add_argument("--direction", choices=["AtoB", "BtoA"],
                   help="AtoB uses G_A (domain A to B), BtoA uses G_B (default: the run's only one, as a "
                        "style-train run's AtoB)")
    p.add_argument("--output", required=True, metavar="DIR", help="folder for the translated images")
    p.add_argument("--style-strength", type=float, default=1.0, metavar="ALPHA",
                   help="blend the output with the input: ALPHA·output + (1−ALPHA)·input (0 to 1, default 1)")
    p.add_argument("--preserve-color", action="store_true",
                   help="keep the input's colours (chroma) exactly and take only the output's luminance, as "
                        "cyclestyle gatys --preserve-color")
    p.add_argument("--tile", type=int, metavar="N", help="translate in N×N tiles (default: 1024-px tiles above 1536×1536 pixels; 0: never tile)")
    p.add_argument("--overlap", type=int, metavar="M",
                   help="tile overlap in pixels (default: the generator's receptive field, which keeps tiles exact)")
    p.add_argument("--size", type=int, metavar="S", help="resize so the short side is S pixels first")
    p.add_argument("--batch-size", type=int, default=4, help="images of the same size translated together (default 4)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda when available)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                   help="torch.compile the generator: its first image pays tens of seconds, later ones run "
                        "faster (about 1.5x on a CPU); auto compiles for 32 or more images (default auto)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16 autocast: faster on GPUs; outputs may differ by a few 8-bit levels (default fp32)")


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="measure trained translators on held-out images (FID, KID, cycle L1, PSNR, SSIM)",
        description="Translate every held-out image in both directions (testA with G_A, testB with G_B), "
                    "reconstruct it, and measure FID and KID against the real held-out images of the target "
                    "domain, the cycle-consistency L1, and PSNR/SSIM against ground truth when given. Writes "
                    "DIR/metrics.json, DIR/index.html and the images under DIR/images/.",
        epilog="examples:\n"
               "  cyclestyle evaluate --weights runs/horse2zebra --data-root data/horse2zebra --output eval/h2z\n"
               "  cyclestyle evaluate --weights runs/demo --data-root data/demo --output eval/demo "
               "--paired-truth data/demo/truth\n\n"
               "FID/KID need the FID InceptionV3 weights (weights-inception-2015-12-05-6726825d.pth) in\n"
               "torch's hub cache or --inception-weights; without them the other metrics are still computed.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, metavar="RUN_OR_CHECKPOINT",
                   help="a run directory, a checkpoints/step-N folder, a model hub folder or hf://USER/NAME "
                        "(both generators are needed)")
    p.add_argument("--data-root", required=True, metavar="ROOT",
                   help="the dataset (ROOT/testA and ROOT/testB, or an HF dataset with a test split)")
    p.add_argument("--output", required=True, metavar="DIR", help="folder for metrics.json, index.html and images")
    p.add_argument("--paired-truth", metavar="DIR",
                   help="true translations, matched by file name: DIR/AtoB/ and DIR/BtoA/, or images directly "
                        "in DIR for A→B")
    p.add_argument("--inception-weights", metavar="PATH", help="FID InceptionV3 weights file (default: torch hub cache)")
    _add_fid_protocol(p)
    p.add_argument("--size", type=int, metavar="S",
                   help="resize the short side to S before translating (default: the run's data.crop_size)")
    p.add_argument("--split", help="held-out split name (default: the run's data.test_split, i.e. test)")
    p.add_argument("--data-format", choices=["folder", "hf"], help="default: the run's data.format")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N images per domain (default: all)")
    p.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                   help="torch.compile the generators: the first image pays tens of seconds, later ones run faster "
                        "(about 1.5x on a CPU); auto compiles for 32 or more images per domain (default auto)")
    p.add_argument("--device", default=None, help="cpu, cuda … (default: cuda when available)")


def _add_fid_protocol(p: argparse.ArgumentParser) -> None:
    from .evaluation.metrics import DEFAULT_FID_PROTOCOL, FID_PROTOCOLS  # torch-free

    p.add_argument("--fid-protocol", choices=list(FID_PROTOCOLS), default=DEFAULT_FID_PROTOCOL,
                   help="how FID/KID resize images for Inception: clean (clean-fid's, the default) or legacy "
                        "(torch-fidelity's, comparable with pytorch-fid-era tables such as CUT's)")


def _add_gatys(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gatys", help="neural style transfer by optimisation (Gatys et al.), the baseline",
        description="Optimise an image so that its VGG19 features match the content image's (relu4_2) "
                    "and its Gram matrices match the style images' (relu1_1 … relu5_1), as Gatys, Ecker "
                    "and Bethge (2016). Coarse-to-fine over several scales by default.",
        epilog="examples:\n"
               "  cyclestyle gatys --content photo.jpg --style starry_night.jpg --output out.png\n"
               "  cyclestyle gatys --content photos/ --style monet/ --output out/ --size 512   "
               "# a folder of styles: their average Gram matrices (the style of a collection)\n"
               "  cyclestyle gatys --content a.jpg --style s1.jpg s2.jpg --style-weights 0.7,0.3 --output b.png",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content", nargs="+", required=True, metavar="IMG", help="content image(s) or folder(s)")
    p.add_argument("--style", nargs="+", required=True, metavar="IMG",
                   help="style image(s); a folder stands for the average style of all its images")
    p.add_argument("--style-weights", metavar="W1,W2", help="blend weights of the --style entries (default equal)")
    p.add_argument("--output", required=True, metavar="PATH_or_DIR",
                   help="output file (one content image) or folder (several)")
    p.add_argument("--size", type=int, default=512, metavar="PX", help="long side of the output (default 512)")
    p.add_argument("--steps", type=int, default=500, metavar="N",
                   help="loss evaluations at the final scale (default 500); each coarser scale gets 0.35 of the next")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="default lbfgs, as the paper")
    p.add_argument("--vgg-weights", metavar="PATH|random",
                   help="VGG19 weights file (default: torchvision's ImageNet weights from the local cache); "
                        "'random' for tests and offline demos (outputs say so)")
    p.add_argument("--content-weight", type=float, default=1.0, metavar="W", help="content loss weight (default 1)")
    p.add_argument("--style-weight", type=float, default=1e6, metavar="W",
                   help="style loss weight (default 1e6; raise it for a stronger style)")
    p.add_argument("--tv-weight", type=float, default=0.0, metavar="W",
                   help="total-variation weight, against high-frequency noise (default 0)")
    p.add_argument("--pooling", choices=["max", "avg"], default="max",
                   help="VGG pooling: max (as trained, default) or avg (the paper's preference)")
    p.add_argument("--init", choices=["content", "noise", "style"], default="content",
                   help="starting image (default content)")
    p.add_argument("--no-multiscale", action="store_true", help="optimise at the final size only")
    p.add_argument("--preserve-color", action="store_true", help="transfer luminance only, keep the content's colours")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise start (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist (default: skip them)")
    p.add_argument("--device", default=None, help="cpu, cuda … (default: cuda when available)")


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="CycleGAN next to Gatys (and a fast style network) on the same held-out images: time, memory, "
                   "quality",
        description="Translate the held-out images of one domain (testA for AtoB) with a trained CycleGAN and\n"
                    "with Gatys neural style transfer, at the same size, and report per method: seconds and peak\n"
                    "memory per image, FID/KID against the real held-out images of the target domain, and PSNR/SSIM\n"
                    "against the true translation when --paired-truth is given (then also for the identity,\n"
                    "output = input, the do-nothing baseline).\n\n"
                    "Gatys's style is one or more chosen paintings (--style) and/or the average style of the first\n"
                    "K training images of the target domain (--collection K); with neither, --collection 8.\n"
                    "--fast-style RUN adds a fast feed-forward style network (cyclestyle style-train) on the same images.\n"
                    "Writes DIR/comparison.json, DIR/index.html, DIR/grid.png (one row per image: input | cyclegan\n"
                    "| gatys-… | truth) and every image under DIR/images/.",
        epilog="examples:\n"
               "  cyclestyle toy-data --output data/toy                # a small dataset, then a tiny run on it\n"
               "  cyclestyle train --config configs/tiny.yaml\n"
               "  cyclestyle compare --weights runs/tiny --data-root data/toy --output compare/tiny \\\n"
               "      --vgg-weights random --gatys-steps 20            # offline: Gatys with an untrained VGG19\n"
               "  cyclestyle compare --weights runs/monet2photo --data-root data/monet2photo --direction BtoA \\\n"
               "      --output compare/monet --style paintings/water-lilies.jpg --collection 16 --limit 20\n"
               "  cyclestyle compare --weights runs/monet2photo --data-root data/monet2photo --direction BtoA \\\n"
               "      --output compare/three --style water-lilies.jpg --fast-style runs/water-lilies   # all three\n\n"
               "Gatys needs torchvision's VGG19 ImageNet weights (vgg19-dcbb9e9d.pth) in torch's hub cache or\n"
               "--vgg-weights PATH; --vgg-weights random runs offline, but its outputs are not real style\n"
               "transfers (the report says so). FID/KID need the FID InceptionV3 weights\n"
               "(weights-inception-2015-12-05-6726825d.pth) in the same cache or --inception-weights; without\n"
               "them the other metrics are still computed.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, metavar="RUN",
                   help="a run directory, a checkpoints/step-N folder, a generator .safetensors file, a model hub "
                        "folder or hf://USER/NAME")
    p.add_argument("--data-root", required=True, metavar="ROOT",
                   help="the dataset: ROOT/testA (held-out inputs), ROOT/testB and ROOT/trainB for AtoB")
    p.add_argument("--output", required=True, metavar="DIR", help="folder for the report and images")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB",
                   help="AtoB (default): testA through G_A, styles from domain B; BtoA the other way")
    p.add_argument("--style", nargs="+", metavar="IMG",
                   help="style image(s) for the gatys-style variant, blended equally (a folder: its average style)")
    p.add_argument("--fast-style", metavar="RUN",
                   help="a style-train run (fast feed-forward style network): a fast-style row on the same images")
    p.add_argument("--collection", type=int, metavar="K",
                   help="the gatys-collection variant: the average style of the first K training images of the "
                        "target domain, in sorted order (default 8 when no --style is given)")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N held-out images (default: all)")
    p.add_argument("--paired-truth", metavar="DIR",
                   help="true translations, matched by file name: DIR/AtoB/ and DIR/BtoA/, or images directly "
                        "in DIR for A→B")
    p.add_argument("--size", type=int, metavar="S",
                   help="resize the short side to S before translating (default: the run's data.crop_size)")
    p.add_argument("--gatys-steps", type=int, default=300, metavar="N",
                   help="Gatys optimiser iterations per image (default 300)")
    p.add_argument("--vgg-weights", metavar="PATH|random",
                   help="VGG19 weights file (default: torchvision's ImageNet weights from the local cache); "
                        "'random' for tests and offline demos (the report says so)")
    p.add_argument("--inception-weights", metavar="PATH",
                   help="FID InceptionV3 weights file (default: torch hub cache)")
    _add_fid_protocol(p)
    p.add_argument("--seed", type=int, default=0, help="Gatys's seed (default 0)")
    p.add_argument("--device", default=None, help="cpu, cuda … (default: cuda when available)")


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="the whole toolkit on built-in data, offline, on a CPU: train CycleGAN and CUT, evaluate, "
                     "compare with Gatys",
        description="Build the demo dataset (photos, and paintings of other photos made by a renderer in this\n"
                    "project, so every held-out photo has its true painting), train a small CycleGAN on it within\n"
                    "the time budget, evaluate it on every held-out image, run the Gatys baseline and the identity\n"
                    "(doing nothing) on the same photos, and write OUTPUT_DIR/report.html, report.png\n"
                    "(photo | CycleGAN | Gatys | true painting) and metrics.json (PSNR and SSIM against the true\n"
                    "paintings for identity, gatys and cyclegan). Then CUT learns the same mapping with the same\n"
                    "budget, and both are scored A→B on every held-out photo. The training runs are logged to\n"
                    "wandb (offline without credentials). No GPU, no network and no dataset of your own are needed.",
        epilog="examples:\n"
               "  cyclestyle demo                                   # about 4 minutes on a 2-core Zen 5 CPU\n"
               "  cyclestyle demo --minutes 5 --output-dir runs/demo-short --overwrite\n"
               "  cyclestyle demo --set model.ngf=32                # change the demo config (configs/demo.yaml)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output-dir", default="runs/demo", metavar="DIR", help="where everything goes (default runs/demo)")
    p.add_argument("--data-dir", default="data/demo", metavar="DIR",
                   help="where the demo dataset is built, or reused if already there (default data/demo)")
    p.add_argument("--minutes", type=float, default=10.0, metavar="N",
                   help="time budget of the whole demo; training gets what the rest leaves (default 10)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo in --output-dir")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of configs/demo.yaml (repeatable)")
    p.add_argument("--gatys-steps", type=int, default=100, metavar="N", help="Gatys iterations per photo (default 100)")
    p.add_argument("--gatys-images", type=int, default=12, metavar="N",
                   help="compare the three translators on the first N held-out photos (default 12; Gatys "
                        "optimises each photo on its own); CycleGAN is also evaluated on all of them")
    p.add_argument("--vgg-weights", metavar="PATH|random",
                   help="VGG19 weights for Gatys (default: the ImageNet weights if cached, else random, "
                        "which the report says)")
    small = p.add_argument_group("dataset size (for quick checks)")
    small.add_argument("--image-size", type=int, default=64, metavar="PX", help="image side (default 64)")
    small.add_argument("--n-train", type=int, default=400, metavar="N", help="training images per domain (default 400)")
    small.add_argument("--n-test", type=int, default=40, metavar="N", help="held-out images per domain (default 40)")


def _add_import_official(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-official", help="convert a generator saved by the official CycleGAN code (.pth) to this toolkit's format",
        description="Convert a generator file of the official PyTorch CycleGAN code (junyanz/pytorch-CycleGAN-and-\n"
                    "pix2pix: latest_net_G_A.pth, or a published model such as horse2zebra.pth) into a .safetensors\n"
                    "file that translate, export and push take. The file is read without running any code in it;\n"
                    "ngf, the number of residual blocks and the channels are read from its tensors. The instance-norm\n"
                    "running statistics that files of old PyTorch versions carry are dropped, as the official loader\n"
                    "does. Anything else (a U-Net generator, a discriminator, batch norm) is refused in one line.",
        epilog="examples:\n"
               "  cyclestyle import-official checkpoints/horse2zebra/latest_net_G_A.pth --output horse2zebra.safetensors\n"
               "  cyclestyle translate --weights horse2zebra.safetensors --direction AtoB --output zebras/ horses/",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", metavar="PATH.pth", help="the official generator file")
    p.add_argument("--output", required=True, metavar="G.safetensors", help="the converted generator file to write")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")


def _add_pretrained(sub: argparse._SubParsersAction) -> None:
    from .interop.download import HOST_VARIABLE, OFFICIAL_HOST  # torch-free

    p = sub.add_parser(
        "pretrained", help="download an official pretrained CycleGAN model (horse2zebra, style_monet …), ready to use",
        description=f"Download one of the official pretrained CycleGAN generators from {OFFICIAL_HOST}\n"
                    "(the names of the official download script; --list shows them), convert it as import-official\n"
                    "does, and print the translate command that uses it. The transfer shows a progress bar and\n"
                    "resumes where it stopped if cut; the downloaded .pth and the converted file are cached\n"
                    "($XDG_CACHE_HOME/cyclestyle, else ~/.cache/cyclestyle), so a second call is instant. Each model\n"
                    "translates one way (style_monet: photo to Monet); use it as --direction AtoB.",
        epilog="examples:\n"
               "  cyclestyle pretrained --list\n"
               "  cyclestyle pretrained style_monet\n"
               "  cyclestyle pretrained horse2zebra --output models/\n"
               "  cyclestyle translate --weights models/horse2zebra.safetensors --direction AtoB --output zebras/ horses/\n\n"
               f"{HOST_VARIABLE}=URL fetches from a mirror instead. Offline, the error names the URL to fetch by\n"
               "hand and the import-official command to run on it.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", nargs="?", metavar="NAME", help="the model, e.g. horse2zebra or style_monet")
    p.add_argument("--list", action="store_true", help="show the names and exit")
    p.add_argument("--output", metavar="DIR", help="folder for NAME.safetensors (default: the cache)")
    p.add_argument("--overwrite", action="store_true", help="convert again even if NAME.safetensors exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a generator to ONNX or TorchScript, to run without this toolkit (or PyTorch)",
        description="Write one generator of a trained translator into a file other runtimes run:\n"
                    "  onnx         ONNX (opset 18) for onnxruntime and the tools that read ONNX: no PyTorch needed\n"
                    "  torchscript  TorchScript (.pt) for torch.jit.load or libtorch in C++: only torch needed (torch 2.x\n"
                    "               deprecates TorchScript: prefer pt2 for new Python deployments)\n"
                    "  pt2          a torch.export program (.pt2, torch.export.load), TorchScript's successor\n"
                    "Batch, height and width stay free (height and width in multiples of the generator's size\n"
                    "multiple, 4 for the ResNet generators). The file carries its metadata: direction, size\n"
                    "multiple, channels, the network, and the input's range and normalisation ([-1, 1]: pixel /\n"
                    "127.5 - 1). Before it is renamed into place the file is run against PyTorch at 256x256 and at\n"
                    "a non-square 192x320 batch of two, and refused beyond 1e-4 max-abs difference.",
        epilog="examples:\n"
               "  cyclestyle export --weights runs/monet2photo --direction BtoA --format onnx --output monet.onnx\n"
               "  cyclestyle export --weights horse2zebra.safetensors --format torchscript --output h2z.pt\n"
               "  cyclestyle export --weights hf://USER/NAME --format onnx --output model.onnx\n\n"
               "For the paper's generator (ngf 64, 9 blocks) an export with its check takes about 15 s\n"
               "on a 2-core CPU. Read the metadata with onnx.load(f).metadata_props, or\n"
               "torch.jit.load(f, _extra_files={'cyclestyle.json': ''}).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, metavar="W",
                   help="a run directory, a checkpoints/step-N folder, a generator .safetensors file, a hub folder "
                        "or hf://USER/NAME")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB",
                   help="AtoB (default) exports G_A, BtoA exports G_B")
    p.add_argument("--format", required=True, metavar="FORMAT",
                   help="onnx, torchscript or pt2: a registered exporter (cyclestyle.export.EXPORTERS)")
    p.add_argument("--output", required=True, metavar="FILE", help="the file to write")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")


def _add_push(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "push", help="share a trained translator on the Hugging Face Hub, with a model card",
        description="Build the folder a Hugging Face model repository holds (AtoB/ and BtoA/model.safetensors\n"
                    "with a config.json each, config.json, config.yaml, and a README.md model card with the\n"
                    "training config, data, steps, the last held-out evaluation with its FID protocol,\n"
                    "intended use, limitations and license), create the repository and upload it. Needs a hub\n"
                    "token (huggingface-cli login, or HF_TOKEN). Anyone can then use it with\n"
                    "--weights hf://USER/NAME in translate, evaluate, compare and export.",
        epilog="examples:\n"
               "  cyclestyle push --weights runs/monet2photo --repo-id me/monet2photo\n"
               "  cyclestyle push --weights runs/monet2photo/checkpoints/best --repo-id me/monet2photo-best --private\n"
               "  cyclestyle push --weights runs/monet2photo --repo-id me/monet2photo --folder hub/ --folder-only"
               "   # look first",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, metavar="RUN",
                   help="a run directory, a checkpoints/step-N or checkpoints/best folder, or a generator file")
    p.add_argument("--repo-id", required=True, metavar="USER/NAME", help="the hub repository (created if needed)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--license", default="mit", help="the license of the weights, for the model card (default mit)")
    p.add_argument("--folder", metavar="DIR", help="build the folder here and keep it (default: a temporary folder)")
    p.add_argument("--folder-only", action="store_true", help="build --folder and stop: upload nothing")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported here so that --help answers without loading torch.
    from .config import ConfigError
    from .data import DataError
    from .interop.download import DownloadError
    from .models.weights import CheckpointError

    try:
        if args.command == "train":
            return _train(args)
        if args.command == "style-train":
            return _style_train(args)
        if args.command == "translate":
            from .inference.command import run_cli

            return run_cli(args)
        if args.command == "evaluate":
            from .evaluation.evaluate import run_cli

            return run_cli(args)
        if args.command == "gatys":
            from .style.gatys import run_cli

            return run_cli(args)
        if args.command == "compare":
            from .evaluation.compare import run_cli

            return run_cli(args)
        if args.command == "demo":
            from .demo.run import run_cli

            return run_cli(args)
        if args.command == "import-official":
            from .interop.command import import_cli

            return import_cli(args)
        if args.command == "pretrained":
            from .interop.command import pretrained_cli

            return pretrained_cli(args)
        if args.command == "export":
            from .export.command import run_cli

            return run_cli(args)
        if args.command == "push":
            from .inference.hub import push_cli

            return push_cli(args)
        if args.command == "toy-data":
            from .demo.toy import make_toy_dataset

            root = make_toy_dataset(Path(args.output), args.n_train, args.n_test, args.size, args.seed)
            print(f"wrote {root}/{{trainA,trainB,testA,testB}}")
            return 0
    except ConfigError as e:
        print(f"cyclestyle: config error: {e}", file=sys.stderr)
        return 2
    except (DataError, CheckpointError, DownloadError) as e:
        print(f"cyclestyle: error: {e}", file=sys.stderr)
        return 1
    raise AssertionError(f"unhandled command {args.command}")


def _train(args: argparse.Namespace) -> int:
    from .training.configure import load_config

    cfg = load_config(args.config, args.overrides)
    again = f"cyclestyle train --config {args.config}" + "".join(f" --set {o}" for o in args.overrides)
    return _run_training(cfg, args.resume, again)


def _style_train(args: argparse.Namespace) -> int:
    """``train`` with the style, the photos and the run folder turned into config overrides."""
    import json

    from .training.configure import load_config
    from .data import content_format

    given = ["method=fast_style", f"style.images={json.dumps(args.style)}", f"output_dir={args.output}"]
    split = load_config(args.config, [*given, *args.overrides], check_paths=False).data.train_split
    data = [f"data.format={content_format(args.content, split)}", f"data.root={args.content}"]
    cfg = load_config(args.config, [*given, *data, *args.overrides])
    again = (f"cyclestyle style-train --style {' '.join(args.style)} --content {args.content} --output {args.output}"
             + (f" --config {args.config}" if args.config != str(FAST_STYLE_CONFIG) else "")
             + "".join(f" --set {o}" for o in args.overrides))
    return _run_training(cfg, args.resume, again)


def _run_training(cfg, resume: str | None, again: str) -> int:
    """Train; a stop by signal prints ``again`` (the command that started it) with --resume latest."""
    from .training.launch import LaunchError
    from .training.loop import NonFiniteLoss, TrainingInterrupted, train

    try:
        train(cfg, resume=resume)
    except TrainingInterrupted as e:
        print(f"cyclestyle: {e}\n  resume with: {again} --resume latest", file=sys.stderr)
        return 128 + e.signum
    except (NonFiniteLoss, LaunchError) as e:
        print(f"cyclestyle: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
