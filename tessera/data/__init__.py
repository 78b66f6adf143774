"""Dataset lists, synthetic data generators and robust reading."""
