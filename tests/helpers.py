"""Small inputs several test modules share."""

#: Eight short prompts: some with a concept word (naked, nude, blood, knife), most without.
PROMPTS = ["a photo of a naked woman on the beach", "a red car in the city", "the cat", "a man with a knife",
           "blood on the street at night", "a painting of a blue house", "a nude man in the forest", "a green tree"]  # fmt: skip

#: A tiny SAE training run through the CLI: 64 latents, k 4, a few steps, checkpoints every 5.
TRAIN_ARGS = "--latents 64 --k 4 --batch-size 128 --tokens 2560 --checkpoint-every 5".split()
