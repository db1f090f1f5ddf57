"""The model registry: MLflow's registry plus approval, aliases, lineage and digests."""
