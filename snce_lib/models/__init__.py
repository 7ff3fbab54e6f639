"""Models the workbook reads and conditions: text encoders (`encoders`: load, tokenize, run to a
block), diffusion pipelines (`pipelines`: load SD or a tiny stand-in; `prompt_embeds`, the one way
every pipeline is conditioned), the hub-shaped stand-in cache (`hubcache`) and the toy world
(`toy`). Imports only `io` and `resources`.
"""
