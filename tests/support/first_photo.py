"""``python -m tests.support.first_photo [PHOTO]``: a worker's start to its first masked photo.

The time a fresh process takes to load every network as a pool worker does
(``serving.pool.load_mask_job``) and then mask one photo (default: scikit-image's
astronaut), and whether torch or onnx were imported on the way.
"""

from __future__ import annotations

import argparse
import sys
import time

started = time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.support.first_photo", description=__doc__)
    p.add_argument("photo", nargs="?", help="a photo file (default: the astronaut)")
    p.add_argument("--mask", type=int, default=1)
    args = p.parse_args(argv)
    if args.photo:
        with open(args.photo, "rb") as stream:
            photo = stream.read()
    else:
        import cv2
        from skimage.data import astronaut

        photo = cv2.imencode(".jpg", astronaut()[..., ::-1])[1].tobytes()
    begin = time.perf_counter()
    from serving.jobs import MaskJob
    from serving.pool import load_mask_job

    job = load_mask_job(workers=1)
    loaded = time.perf_counter()
    result = job(MaskJob(photo, args.mask))
    done = time.perf_counter()
    print(
        f"load {1000 * (loaded - begin):.0f} ms, first photo {1000 * (done - loaded):.0f} ms, "
        f"start to first photo {1000 * (done - started):.0f} ms, "
        f"faces {getattr(result, 'face_count', result)}, "
        f"torch imported: {'torch' in sys.modules}, onnx imported: {'onnx' in sys.modules}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
