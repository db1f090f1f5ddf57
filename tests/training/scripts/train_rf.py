"""An unmodified SageMaker script-mode training script (as users write them for SageMaker)."""

import argparse
import json
import os

import joblib
import mlflow
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n_estimators", type=int, default=10)
    parser.add_argument("--max_depth", type=int, default=3)
    parser.add_argument("--model-dir", type=str, default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", type=str, default=os.environ.get("SM_CHANNEL_TRAIN"))
    args, _ = parser.parse_known_args()

    frame = pd.read_csv(os.path.join(args.train, "train.csv"))
    x, y = frame[["a", "b"]], frame["label"]
    model = RandomForestClassifier(n_estimators=args.n_estimators, max_depth=args.max_depth)
    model.fit(x, y)
    accuracy = float(model.score(x, y))
    print(f"trained {args.n_estimators} trees, accuracy {accuracy:.3f}")
    print("hyperparameters", json.loads(os.environ["SM_HPS"]))
    print("channels", json.loads(os.environ["SM_CHANNELS"]))
    with mlflow.start_run():
        mlflow.log_metric("train_accuracy", accuracy)
    joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.json"), "w") as handle:
        json.dump({"accuracy": accuracy}, handle)
