"""The data the workbook ships: prompt files, concept pairs, toy weights, shipped results.

In a checkout this is the top-level data/ folder; an installed wheel carries it as snce_lib.data."""
