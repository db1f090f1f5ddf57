"""MLflow's tracking server behind Slipway's identity and registry rules."""
