"""Hyperparameter tuning on Optuna: parallel trials, pruning, warm start, nested runs."""
