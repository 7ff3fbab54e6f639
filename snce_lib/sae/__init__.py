"""The sparse autoencoder: the TopK model (`model`, compute only), every file it is written to or read
from (`formats`: snce's checkpoint, SAELens', sparsify's, the hub), training with AuxK and mixed
precision (`train`), and the memory-mapped activation store it learns from (`store`).
Imports `io`, `resources` and `models`.
"""
