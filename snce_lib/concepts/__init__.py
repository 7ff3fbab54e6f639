"""Concepts in an SAE: codes of prompts (`codes`), concept/deconcept pairs (`pairs`), neuron
rankings, one function a method (`ranking`), the chosen neurons bound to their SAE (`selection`),
the eraser (`erase`), neurons as detectors (`detection`), what erasure leaves behind (`leakage`),
and where a feature is strong: end or padding, function words, content words, with word pieces
joined (`positions`), and how much of what a latent or a raw coordinate does one short label
explains (`readability`).
Imports `io`, `resources`, `prompts`, `models` and `sae`.
"""
