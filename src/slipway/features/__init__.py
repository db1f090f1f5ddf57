"""The feature store: feature groups, validated ingestion, online and offline stores."""
