"""Serving: how masking jobs reach the model and come back.

- :mod:`serving.jobs` the wire format (torch-free; the bot imports it)
- :mod:`serving.settings` the settings the bot and ``facemask-worker`` share
- :mod:`serving.logs` the one logging set-up
- :mod:`serving.pool` worker processes, each loading the model once
- :mod:`serving.worker` the arq worker behind ``facemask-worker`` (Redis mode)
"""
