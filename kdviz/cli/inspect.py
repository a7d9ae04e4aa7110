"""``kdviz inspect FILE``: what a checkpoint holds, as one JSON object.

The object names the architecture guessed from the weights, any architecture the weights fit exactly as well
(``arch_ties``) and the nearest others (``arch_alternatives``), the container's metadata (epoch, accuracy,
training options) and, for a distiller's file holding a student and a teacher, ``parts`` (pick one with
``--part``).
"""

from __future__ import annotations

import argparse
import json
import sys

from kdviz.cli.text import run_hf_inspect
from kdviz.errors import CheckpointError
from kdviz.io.checkpoints import load_checkpoint
from kdviz.io.hf_text import is_hf_text_source

__all__ = ["register", "run_inspect"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kdviz inspect``."""
    p = subparsers.add_parser("inspect", help="describe a checkpoint file as JSON (format, arch, classes, sha256)")
    p.add_argument("file", help="checkpoint: .safetensors, .pt, .pth, .bin, .ckpt, or a file without extension")
    p.add_argument("--arch", help="architecture name (guessed from the weights when omitted)")
    p.add_argument("--num-classes", type=int, help="expected number of classes (checked)")
    p.add_argument("--in-channels", type=int, help="expected input channels (checked)")
    p.add_argument("--part", choices=("student", "teacher"),
                   help="for a file holding a student and a teacher (mdistiller): which one (default student)")
    p.add_argument("--trust-code", action="store_true", help="allow TorchScript / torch.export programs (they run code)")
    p.add_argument("--verbalizer", action="append", metavar="CLASS=TOKEN",
                   help="a GPT-2 / T5 folder read as a classifier: the token generated for CLASS (repeat per class, "
                        "in class order; e.g. --verbalizer 'fresh= fresh' --verbalizer 'rotten= rotten'); default "
                        "from config.json's class names")
    p.add_argument("--prompt", help="a GPT-2 / T5 folder: the prompt template holding {text} "
                                    "(default 'predict: {text}', GPT-2 adds '\\nlabel:')")
    p.set_defaults(func=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    """Print the checkpoint's summary as JSON; exit 2 (one line on stderr) when it is refused."""
    if is_hf_text_source(args.file):  # a Hugging Face folder or zip (config.json + weights + tokenizer)
        return run_hf_inspect(args)
    try:
        loaded = load_checkpoint(
            args.file, arch=args.arch, num_classes=args.num_classes, in_channels=args.in_channels,
            trust_code=args.trust_code, part=args.part,
        )
    except CheckpointError as exc:
        print(f"kdviz inspect: {args.file}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(loaded.summary()))
    return 0
