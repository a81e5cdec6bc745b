"""Training: the step (owns model state), cost accounting, the compiled program, the driver, checkpoints, sharding."""
