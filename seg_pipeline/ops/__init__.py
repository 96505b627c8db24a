"""Jobs and schedules that run the pipeline."""
