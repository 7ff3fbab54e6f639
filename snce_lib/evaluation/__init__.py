"""Evaluation: protocols as data (`protocols`), the resumable generation runner (`generate`), image
metrics (`metrics`), typed results per folder (`results`), the method x prompt-set grid (`grid`),
the paper-style table (`tables`), benchmark and stand-in prompt sets (`sets`), safe display of
images (`display`) and the toy-world erasure experiment (`toy`). Imports every layer above it
except `workbook` and `cli`.
"""
