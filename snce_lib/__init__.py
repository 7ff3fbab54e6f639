"""snce: Single Neuron-based Concept Erasure with sparse autoencoders, as a workbook.

The library in layers; a package imports only from the layers above it in this list:

- `io`, `resources`, `prompts`: atomic files and checked reads, packaged data and the run folder,
  prompt files and the public benchmark sets.
- `models`: text encoders, diffusion pipelines (and how a pipeline is conditioned), the hub-shaped
  stand-in cache, the toy world.
- `sae`: the TopK sparse autoencoder, its training, and the activation store it is trained from.
- `concepts`: SAE codes of prompts, concept pairs, neuron rankings and selection, the eraser,
  detection and leakage.
- `atlas`: the dictionary's map and feature cards.
- `evaluation`: protocols, generation, image metrics, typed results, the evaluation grid and tables,
  safe display, the toy-world experiment.
- `workbook`: profiles, notebook setup and steps, widgets, the headless notebook runner.
- `cli`: the `snce` command.
"""

__version__ = "0.1.0"
