"""A long job that checkpoints every epoch and resumes from its checkpoint."""

import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=8)
parser.add_argument("--seconds", type=float, default=0.5)
parser.add_argument("--fail_times", type=int, default=0)
args, _ = parser.parse_known_args()

checkpoints = os.environ["SM_CHECKPOINT_DIR"]
state_file = os.path.join(checkpoints, "state.json")
state = {"epoch": 0, "attempts": []}
if os.path.exists(state_file):
    with open(state_file) as handle:
        state = json.load(handle)
    print(f"resuming from epoch {state['epoch']}", flush=True)
state["attempts"].append(int(os.environ["SLIPWAY_JOB_ATTEMPT"]))
if len(state["attempts"]) <= args.fail_times:
    with open(state_file, "w") as handle:
        json.dump(state, handle)
    time.sleep(0.2)
    sys.exit(f"failing on purpose ({len(state['attempts'])})")
while state["epoch"] < args.epochs:
    time.sleep(args.seconds)
    state["epoch"] += 1
    with open(state_file + ".tmp", "w") as handle:
        json.dump(state, handle)
    os.replace(state_file + ".tmp", state_file)
    print(f"epoch {state['epoch']} done", flush=True)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "state.json"), "w") as handle:
    json.dump(state, handle)
