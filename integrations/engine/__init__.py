"""Runs streams: locking, checkpoints, per-record status, retries, replay, the mapping gate.

The engine knows no vendor: it asks ``flows`` what to read and write and ``systems`` clients
how to talk. Faces (admin, API, commands, tasks) call the functions exported here.
"""
