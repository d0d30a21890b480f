"""Command-line options that several lab commands share."""

from __future__ import annotations

import argparse

from core.detection.registry import DETECTOR_NAMES


def add_detector_option(parser: argparse.ArgumentParser) -> None:
    """``--detector``: by default the product's (MTCNN with CenterFace behind it), so that a
    measurement measures what ships."""
    parser.add_argument(
        "--detector",
        choices=DETECTOR_NAMES,
        default="auto",
        help="the face detector (default: auto, the product's: MTCNN with CenterFace behind it)",
    )
