"""Concepts in an SAE: codes of prompts (`codes`), concept/deconcept pairs (`pairs`), neuron
rankings, one function a method (`ranking`), the chosen neurons bound to their SAE (`selection`),
the eraser (`erase`), neurons as detectors (`detection`) and what erasure leaves behind (`leakage`).
Imports `io`, `resources`, `prompts`, `models` and `sae`.
"""
