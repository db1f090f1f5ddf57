"""A model that fails every prediction: the demo deploys it to show an alarm rolling a
canary back. (Importable by the gateway, which loads it through MLflow's pyfunc.)"""

from __future__ import annotations

from mlflow.pyfunc.model import PythonModel


class Broken(PythonModel):
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        # (No type hints: MLflow would read them as an input schema.)
        raise RuntimeError("this model is broken on purpose")
