"""Command-line options that several lab commands share."""

from __future__ import annotations

import argparse
import dataclasses

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


def add_gate_option(parser: argparse.ArgumentParser) -> None:
    """``--gate FIELD=VALUE ...``: the face gate with other thresholds than the shipped ones
    (:class:`core.keypoints.plausibility.FaceGate`'s fields), to measure a choice."""
    parser.add_argument(
        "--gate",
        nargs="+",
        default=[],
        metavar="FIELD=VALUE",
        help="other face-gate thresholds than the shipped ones (FaceGate's fields: max_spread=0.2)",
    )


def gate_with(parser: argparse.ArgumentParser, gate, pairs: list[str]):
    """``gate`` with the ``--gate`` pairs applied; a bad pair stops with a usage error."""
    names = {f.name for f in dataclasses.fields(gate)}
    fields = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            if name not in names:
                raise ValueError
            fields[name] = float(value)
        except ValueError:
            parser.error(f"--gate {pair}: give FIELD=NUMBER, FIELD one of {sorted(names)}")
    return dataclasses.replace(gate, **fields)
