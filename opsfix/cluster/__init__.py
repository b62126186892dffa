"""Runs sharded over Celery workers: the coordinator sends each host as a task, workers
near the hosts run it with the same engine, and the coordinator reports as a local run.

Celery is an optional extra (`pip install 'opsfix[cluster]'`); nothing here imports it
until a cluster run or a worker starts (docs/scale.md).
"""
