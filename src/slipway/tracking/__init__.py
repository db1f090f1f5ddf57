"""Experiment tracking: MLflow's tracking server and UI, run by Slipway on its own stores.

Slipway does not reimplement tracking: it starts MLflow's server (REST API, artifact proxy
and UI, unchanged) on Slipway's metadata database and under Slipway's artifact root, tuned so
that logging from training code is fast. The launcher and its helpers are in
:mod:`slipway.tracking.server`, which is also the module the supervisor runs
(``python -m slipway.tracking.server``); it is not imported here so that running it as
``__main__`` does not load it twice.
"""
