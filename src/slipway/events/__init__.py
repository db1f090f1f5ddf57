"""Events put to work: triggers that start pipelines, and alerts sent to channels."""
