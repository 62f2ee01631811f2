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
        help="Kokoro .pth checkpoint (default: seeded random weights)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="Seed of the random weights. Default: %(default)s"
    )
    parser.add_argument("--stft", choices=STFT_KINDS, default="exact", help="Default: %(default)s")
    parser.add_argument(
        "--source", choices=SOURCE_KINDS, default="deterministic", help="Default: %(default)s"
    )


def spec_from(args: argparse.Namespace) -> object:
    from parity.builders.model import KokoroSpec
    from parity.report.session import checkpoint_from_env

    return KokoroSpec(
        preset=args.preset,
        seed=args.seed,
        checkpoint=checkpoint_from_env(args.checkpoint),
        stft=args.stft,
        source=args.source,
    )
