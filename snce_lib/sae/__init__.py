"""The sparse autoencoder: the TopK model and its checkpoints (`model`), training with AuxK and
mixed precision (`train`), and the memory-mapped activation store it learns from (`store`).
Imports `io`, `resources` and `models`.
"""
