# core first: it tunes the OpenMP threads of torch before torch loads (see core/__init__.py)
import core  # noqa: F401
