"""The parts of a training run, one job each; engine.train tells the run's story with them."""
