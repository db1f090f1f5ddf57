"""Training jobs: scripts run in their own process with SageMaker's script-mode contract."""
