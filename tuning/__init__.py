"""Whatever changes a program or weights: metrics, optimizers, experiments, trainers (later issues)."""
