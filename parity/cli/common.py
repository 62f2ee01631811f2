"""What several commands share: the model recipe options and the ``KokoroSpec`` they make."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


def recipe_options(parser: argparse.ArgumentParser) -> None:
    from parity.builders.model import PRESETS, SOURCE_KINDS, STFT_KINDS

    parser.add_argument("--preset", choices=PRESETS, default="full", help="Default: %(default)s")
    parser.add_argument(
        "--checkpoint",
        default=None,
        metavar="PATH",
        help="Kokoro .pth checkpoint. Default: $PARITY_KOKORO_CHECKPOINT if set, else seeded "
        "random weights",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="Seed of the random weights. Default: 0"
    )
    parser.add_argument("--stft", choices=STFT_KINDS, default="exact", help="Default: %(default)s")
    parser.add_argument(
        "--source", choices=SOURCE_KINDS, default="deterministic", help="Default: %(default)s"
    )


def spec_from(args: argparse.Namespace) -> object:
    from parity.builders.model import KokoroSpec, seed_for
    from parity.report.session import checkpoint_from_env

    checkpoint = checkpoint_from_env(args.checkpoint)
    return KokoroSpec(
        preset=args.preset,
        seed=seed_for(args.seed, checkpoint),
        checkpoint=checkpoint,
        stft=args.stft,
        source=args.source,
    )
