"""What can be checked of the container path without building it: the Dockerfile and the
compose file are pinned, locked, bounded and lean. (./run container-check builds and runs
them for real where podman can.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    lines = [
        ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    return [(ln.split()[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]


def test_the_base_image_is_pinned_by_digest():
    args = dict(a.split("=", 1) for op, a in _instructions() if op == "ARG" and "=" in a)
    for base in (a.split()[0] for op, a in _instructions() if op == "FROM"):
        base = args.get(base.strip("${}"), base)
        assert re.fullmatch(r"python:3\.11[\w.-]*@sha256:[0-9a-f]{64}", base), base
    image = COMPOSE["services"]["redis"]["image"]
    assert re.fullmatch(r"redis:[\w.-]+@sha256:[0-9a-f]{64}", image), image


def test_dependencies_install_from_the_lock_before_the_project():
    steps = _instructions()
    final = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    image = steps[final:]  # the final stage: what the published image holds
    lock = next(i for i, (op, a) in enumerate(image)
                if op == "RUN" and "--require-hashes -r requirements/serving.txt" in a)  # fmt: skip
    project = next(i for i, (op, a) in enumerate(image) if op == "RUN" and "/wheels" in a)
    assert lock < project
    assert not any(op == "COPY" and a.split()[0] in ("core", "bot", "serving") for op, a in image)
    # nothing is installed without its dependencies (building our own wheel alone is fine)
    assert all("--no-deps" not in a for op, a in steps if "pip install" in a)
    assert all("torch" not in a or "assert" in a or "not" in a for op, a in steps if op == "RUN")
    assert "index-url" not in DOCKERFILE


def test_training_weights_and_tools_stay_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in ("core/weights/*.pt", "tests/", "training/", "lab/", ".venv", ".env"):
        assert entry in ignored, entry


def test_every_service_is_bounded_runs_read_only_and_restarts():
    for name, service in COMPOSE["services"].items():
        assert service.get("mem_limit") and service.get("cpus"), name
        assert service.get("read_only") is True, name
        assert service.get("restart") == "unless-stopped", name
        for mount in service.get("tmpfs", []):
            assert "size=" in mount, (name, mount)
    worker_tmp = COMPOSE["services"]["worker"]["tmpfs"][0]
    size = re.search(r"size=(\d+)m", worker_tmp)
    assert size and int(size.group(1)) >= 2 * 20 + 64  # a 20 MB video in and its copy out
    assert "healthcheck" in COMPOSE["services"]["redis"]
    assert "healthcheck" in COMPOSE["services"]["worker"]


def test_redis_requires_a_password_that_every_service_takes_from_env():
    command = COMPOSE["services"]["redis"]["command"]
    assert "--requirepass" in command
    password = command[command.index("--requirepass") + 1]
    assert password.startswith("${REDIS_PASSWORD")
    for name in ("bot", "worker"):
        url = COMPOSE["services"][name]["environment"]["REDIS_URL"]
        assert url.startswith("redis://:${REDIS_PASSWORD}@redis:"), url
    assert "REDIS_PASSWORD=" in (ROOT / ".env.example").read_text()


def test_compose_uses_only_syntax_both_compose_tools_read():
    for service in COMPOSE["services"].values():
        env_file = service.get("env_file")
        assert env_file is None or isinstance(env_file, str | list)
        assert all(
            isinstance(e, str)
            for e in ([env_file] if isinstance(env_file, str) else env_file or [])
        )
        assert "deploy" not in service  # limits as mem_limit/cpus, read by both
    assert "version" not in COMPOSE  # obsolete in Compose v2
