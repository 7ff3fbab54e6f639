"""The dictionary atlas: codes over a sample of prompts and the decoder map (`map`), feature cards and
word search (`cards`), a label per feature (`labels`), the two maps with clusters and their names
(`clusters`), the shareable HTML page (`html`), and all of it in one call, plus discovery from
examples (`explore`). Imports `io`, `models`, `sae` and `concepts`.
"""
