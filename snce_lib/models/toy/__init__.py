"""The toy world: a text-to-image model small enough to train on a CPU, where erasure is measurable.

`world` renders one-object images with exact labels and writes their captions; `model` is the tiny
diffusion pipeline (frozen MiniLM + a small UNet); `detector` reads colour and shape back from an
image. The experiment that runs SNCE on it is `snce_lib.evaluation.toy`.
"""
