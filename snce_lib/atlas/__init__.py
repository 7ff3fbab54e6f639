"""The dictionary atlas: codes over a sample of prompts and the map of decoder directions (`map`),
feature cards and word search (`cards`). Imports `models`, `sae` and `concepts`.
"""
