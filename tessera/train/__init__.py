"""Training loop, optimizer, schedules, checkpoints and logging."""
