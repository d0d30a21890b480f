# The bot and the worker in one CPU-only image (no torch: every network runs on ONNX Runtime):
#   docker build -t facemask .
#   docker run --env-file .env -v facemask-data:/data facemask                 # the bot
#   docker run -e REDIS_URL=redis://:PASSWORD@... facemask facemask-worker     # a worker
# The base is pinned by digest; BASE_IMAGE swaps it (./run container-check builds on a
# local stand-in where no registry can be reached).
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

# The project's wheel, built apart: the final image installs it without also keeping a copy
# of the code (and its 20 MB of weights) in a layer of its own
FROM ${BASE_IMAGE} AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# the product only: training/, lab/ and tests/ (and their extras) stay out of the image, and
# so do training's float weights (core/weights/*.pt, .dockerignore)
COPY pyproject.toml README.md THIRD_PARTY.md ./
COPY core core
COPY serving serving
COPY bot bot
COPY masks masks
# our wheel alone (its dependencies come from the lock in the final stage)
RUN pip wheel --no-deps -w /wheels .

FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Dependencies first, from the lock with its hashes (requirements/README.md): this layer is
# rebuilt only when the lock changes, not on every code change
COPY requirements/serving.txt requirements/serving.txt
RUN pip install --require-hashes -r requirements/serving.txt

# Every dependency is already installed from the lock: this adds the project alone, from the
# wheel stage (mounted, not copied). The weights it serves are ONNX files, each checked
# against its SHA-256 when loaded. The checks: nothing broken, a worker loads every network
# without torch or onnx, the languages load, and no tool's library (plots, progress bars,
# the test server) slipped in
COPY THIRD_PARTY.md ./
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install /wheels/*.whl \
    && pip check \
    && python -c "import bot.app, serving.worker; from core.detection.mtcnn import load_nets; load_nets(); from core.detection.centerface import CenterFace; CenterFace()" \
    && python -c "import sys; from serving.pool import load_mask_job; load_mask_job(); bad = {'torch', 'onnx'} & set(sys.modules); assert not bad, bad" \
    && python -c "from bot import i18n; assert len(i18n.load_all()) == len(i18n.LANGUAGES)" \
    && python -c "import importlib.util as u; extra = [m for m in ('torch', 'onnx', 'matplotlib', 'tqdm', 'skimage', 'aiohttp', 'pytest') if u.find_spec(m)]; assert not extra, extra"

RUN useradd --create-home --uid 10001 facemask \
    && mkdir /data && chown facemask /data
USER facemask
WORKDIR /data

# the bot's state (facemask-bot.sqlite3, embedded mode) lives in the volume; the heartbeat
# (the bot's or facemask-worker's, whichever runs here) need not survive. Nothing else is
# written: the container runs with a read-only root and a tmpfs on /tmp (docker-compose.yml)
ENV STATE_DIR=/data \
    HEARTBEAT_FILE=/tmp/facemask.alive \
    WORKERS=2 \
    PYTHONDONTWRITEBYTECODE=1

HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["facemask-bot", "--healthcheck"]

CMD ["facemask-bot"]
