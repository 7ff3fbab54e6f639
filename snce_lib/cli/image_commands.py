"""`snce` subcommands that make and measure images: generate, evaluate; and `workbook`, the notebooks headless.

Argument types live in `snce_lib.cli.args`; the parser and the error funnel in `snce_lib.cli`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from snce_lib.cli.args import add_sae_arguments, finite_float, load_sae, positive_int


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="generate one image per (prompt, seed), resumable, with an optional eraser")
    p.add_argument(
        "--model",
        default=None,
        help="sd14 | a hub id | a local pipeline folder | tiny | toy | toy-clip (default: $SNCE_MODEL, else SD v1.4)",
    )
    p.add_argument("--prompts", required=True, help="a named set (i2p, i2p_nudity, coco, ...) or a CSV")
    p.add_argument("--limit", type=positive_int, default=None, help="first N rows of the set")
    add_sae_arguments(p, required=False)
    p.add_argument("--neurons", default=None, help="neurons.json from `snce select` (needs --sae)")
    p.add_argument("--lam", type=finite_float, default=1.0, help="erasure strength (a finite number >= 0)")
    p.add_argument("--allow-negative-lam", action="store_true", help="allow lambda < 0, which adds the concept")
    p.add_argument("--mode", default="B", choices=("A", "B", "tuple", "prompt"))
    p.add_argument("--move-negative", action="store_true")
    p.add_argument("--protocol", default="snce-paper")
    p.add_argument("--steps", type=positive_int, default=None, help="override the protocol's steps")
    p.add_argument("--resolution", type=positive_int, default=None, help="override the protocol's resolution")
    p.add_argument("--batch-size", type=positive_int, default=4)
    p.add_argument("--device", default=None)
    p.add_argument("--out", required=True, help="image folder (rerun the same command to resume)")
    p.set_defaults(func=cmd_generate)


def launch_shard(device: str | None) -> tuple[tuple[int, int], str | None]:
    """(shard index, shard count) and the device of this process. Under `accelerate launch` (or
    torchrun, which it runs) RANK and WORLD_SIZE say which process this is, LOCAL_RANK which GPU."""
    count = int(os.environ.get("WORLD_SIZE", "1"))
    index = int(os.environ.get("RANK", "0"))
    if count > 1 and device is None:
        import torch

        if torch.cuda.is_available():
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return (index, count), device


def cmd_generate(a) -> int:
    from snce_lib.concepts.erase import Eraser
    from snce_lib.concepts.selection import Selection
    from snce_lib.evaluation.generate import generate
    from snce_lib.evaluation.protocols import get_protocol
    from snce_lib.io import check_output_dir
    from snce_lib.models.pipelines import load_pipeline
    from snce_lib.prompts import load_set

    check_output_dir(a.out)
    over = {k: v for k, v in (("steps", a.steps), ("resolution", a.resolution)) if v is not None}
    protocol = get_protocol(a.protocol, **over)
    prompts = load_set(a.prompts, n=a.limit)
    if bool(a.sae) != bool(a.neurons):
        raise ValueError("--sae and --neurons go together")
    a.model = a.model or os.environ.get("SNCE_MODEL") or "sd14"
    shard, device = launch_shard(a.device)
    if a.model in ("toy", "toy-clip"):
        from snce_lib.models.toy.model import load_world

        pipe = load_world("minilm" if a.model == "toy" else "clip", device=device)
    else:
        pipe = load_pipeline(a.model, device=device)
    eraser = None
    if a.sae:
        sae = load_sae(a)
        settings = {
            "lam": a.lam,
            "mode": a.mode,
            "move_negative": a.move_negative,
            "allow_negative": a.allow_negative_lam,
        }
        eraser = Eraser.from_selection(Selection.load(a.neurons, sae), sae, **settings)
    rows = generate(
        pipe, prompts, protocol, a.out, eraser=eraser, batch_size=a.batch_size, model_id=a.model, shard=shard
    )
    print(json.dumps({"images": len(rows), "out": a.out, "protocol": protocol.name, "shard": list(shard)}))
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="NudeNet counts and ASR, CLIP score, FID for a generated folder")
    p.add_argument("--images", required=True)
    p.add_argument("--reference", default=None, help="folder to compute FID against")
    p.add_argument("--protocol", default="snce-paper")
    p.add_argument(
        "--clip", action="store_true", help="compute CLIP score with the protocol's CLIP model (needs the hub once)"
    )
    p.add_argument("--out", required=True, help="results.json")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(a) -> int:
    from snce_lib.evaluation.manifest import planned_images
    from snce_lib.evaluation.metrics import load_clip
    from snce_lib.evaluation.protocols import get_protocol
    from snce_lib.evaluation.results import evaluate_folder
    from snce_lib.io import atomic_write_json, check_output_file

    check_output_file(a.out)
    if a.reference is not None and not Path(a.reference).is_dir():
        raise FileNotFoundError(f"--reference {a.reference} is not a folder of generated images")
    protocol = get_protocol(a.protocol)
    clip = load_clip(protocol.clip_model) if a.clip else None
    result = evaluate_folder(a.images, protocol, a.reference, clip=clip)
    res = result.as_dict()
    planned = planned_images(a.images)
    res["planned_images"] = planned
    res["complete"] = planned is None or result.images >= planned
    atomic_write_json(a.out, res)
    if not res["complete"]:
        print(
            f"snce: warning: {a.images} holds {result.images} of the {planned} images its run planned; "
            "the numbers cover only those (rerun generate to finish)",
            file=sys.stderr,
        )
    print(
        json.dumps(
            {
                "images": result.images,
                "planned": planned,
                "total": result.nudenet.total,
                "asr": result.nudenet.asr,
                "clip": res["clip_score"],
                "fid": res["fid"],
            }
        )
    )
    return 0


#: `workbook.profiles.PROFILES`' names, spelled out so that `snce --help` need not import torch (a test checks them)
WORKBOOK_PROFILES = ("offline", "colab", "colab-smoke", "colab-rehearsal", "colab-paper")


def _add_workbook(sub) -> None:
    p = sub.add_parser("workbook", help="run the notebooks (00-04) top to bottom, headless, and summarise")
    p.add_argument("--profile", default="offline", choices=WORKBOOK_PROFILES)
    p.add_argument("--only", nargs="*", default=None, help="a subset, e.g. 01_train_sae")
    p.add_argument("--notebooks", default=None, help="folder holding the notebooks (default ./notebooks)")
    p.add_argument(
        "--timeout",
        type=positive_int,
        default=None,
        help="seconds a cell may take (default: 1800 offline and colab-smoke, else 6 h: training 400M tokens "
        "on a T4 takes over an hour, and the rehearsal makes 512 px images on a CPU)",
    )
    p.set_defaults(func=cmd_workbook)


def cmd_workbook(a) -> int:
    from snce_lib.workbook.runner import run_notebooks

    timeout = a.timeout or (1800 if a.profile in ("offline", "colab-smoke") else 6 * 3600)
    res = run_notebooks(a.profile, a.only, timeout, notebooks=a.notebooks)
    summary = json.loads(Path(res["summary"]).read_text())
    summary.pop("profile", None)
    print(json.dumps(summary, indent=1))
    print(f"executed notebooks: {', '.join(res['executed'])}")
    print(f"summary: {res['summary']}")
    return 0


ADDERS = [_add_generate, _add_evaluate, _add_workbook]
