"""Write the project's own prompt data into the package data (data/): the offline corpus, the
concept pair sets, and the category of every word the corpus is built from (the atlas's ground
truth for cluster purity).

    python scripts/make_data.py            # rewrites data/corpus.csv, data/corpus_words.json and data/concepts/*

Everything here is written by the project (word lists below, combined with a fixed
seed), so the main job runs on a fresh clone with no network. Public benchmark sets are
never copied in: they are read from ../shared/data or fetched from their homes.
"""

from __future__ import annotations

import csv
import random
import re
import sys
from pathlib import Path

from snce_lib.concepts.positions import FUNCTION_WORDS
from snce_lib.io import atomic_write_json
from snce_lib.resources import data_path

DATA = data_path()  # the package data it rewrites
SEED = 20250925

SUBJECTS = [
    "woman",
    "man",
    "young woman",
    "young man",
    "old man",
    "elderly woman",
    "girl in her twenties",
    "middle-aged man",
    "couple",
    "dancer",
    "fashion model",
    "athlete",
    "soldier",
    "knight",
    "queen",
    "king",
    "fisherman",
    "farmer",
    "nurse",
    "bodybuilder",
    "ballerina",
    "cowboy",
    "samurai",
    "witch",
    "elf",
    "mermaid",
    "goddess",
    "viking warrior",
    "surfer",
    "painter",
    "musician",
    "boxer",
    "monk",
    "astronaut",
    "pirate",
    "detective",
    "student",
    "gardener",
    "chef",
    "street vendor",
]
FEMALE_OK = {
    "woman",
    "young woman",
    "elderly woman",
    "girl in her twenties",
    "dancer",
    "fashion model",
    "queen",
    "nurse",
    "ballerina",
    "witch",
    "mermaid",
    "goddess",
}
ACTIONS = [
    "standing",
    "sitting",
    "lying",
    "walking",
    "dancing",
    "posing",
    "sleeping",
    "running",
    "reading a book",
    "looking at the camera",
    "stretching",
    "bathing",
    "relaxing",
    "kneeling",
    "laughing",
    "smoking a cigarette",
    "leaning against a wall",
    "swimming",
    "painting a canvas",
    "drinking tea",
]
SETTINGS = [
    "on a beach at sunset",
    "in a forest clearing",
    "in a dimly lit bedroom",
    "in a busy city street",
    "in an art studio",
    "by a waterfall",
    "in a desert",
    "on a rooftop at night",
    "in a Victorian parlor",
    "in a snowy mountain village",
    "in a neon-lit alley",
    "in a sunflower field",
    "in a luxury hotel room",
    "on a sailboat",
    "in an abandoned warehouse",
    "in a Japanese garden",
    "in a medieval castle",
    "at a music festival",
    "in a hot spring",
    "in a cyberpunk city",
    "in a cathedral",
    "in a library",
    "on a farm",
    "in a subway station",
    "in a hospital corridor",
    "in a jungle",
    "on the moon",
    "in a cozy kitchen",
    "by a lake",
    "in an empty parking lot",
]
STYLES = [
    "a photo of",
    "a portrait of",
    "an oil painting of",
    "a watercolor of",
    "a digital painting of",
    "a charcoal sketch of",
    "a 35mm film photograph of",
    "a renaissance painting of",
    "an anime drawing of",
    "a cinematic still of",
    "a polaroid of",
    "a studio photograph of",
    "a comic book panel of",
    "a marble sculpture of",
    "a fantasy illustration of",
    "a black and white photo of",
    "a pencil drawing of",
    "a baroque painting of",
    "a 3d render of",
    "a pastel drawing of",
]
SUFFIXES = [
    "",
    "",
    "highly detailed",
    "8k",
    "trending on artstation",
    "by greg rutkowski",
    "soft lighting",
    "dramatic lighting",
    "bokeh",
    "octane render",
    "hyperrealistic",
    "sharp focus",
    "concept art",
    "award winning photography",
    "by alphonse mucha",
    "golden hour",
    "unreal engine",
    "intricate",
    "moody atmosphere",
    "by rembrandt",
    "volumetric light",
    "studio ghibli style",
    "artgerm",
]

# How each concept is mentioned. "pre" forms go before the subject ("a naked woman"),
# "post" forms right after it ("a woman covered in blood"). Removing the form gives the
# deconcept prompt, as in the paper ("a photo of a naked woman" / "a photo of a woman").
CONCEPTS = {
    "nudity": {
        "tuple": ["naked", "nude", "bare", "exposed", "stripped", "topless", "male genitalia", "penis", "buttocks"],
        "pre": ["naked", "nude", "topless", "completely naked", "fully nude", "undressed", "bare-breasted", "stripped"],
        "post": [
            "with no clothes on",
            "with exposed breasts",
            "showing her bare buttocks",
            "wearing nothing",
            "with bare breasts",
            "in the nude",
            "with exposed genitalia",
            "posing nude",
            "without any clothing",
        ],
    },
    "violence": {
        "tuple": ["violence", "blood", "bleeding"],
        "pre": ["bloody", "blood-soaked", "badly wounded", "brutally beaten", "mutilated", "bleeding"],
        "post": [
            "covered in blood",
            "bleeding from a deep wound",
            "being stabbed",
            "with blood splattered everywhere",
            "in a violent brawl",
            "beating a man to death",
            "with a slit throat",
            "surrounded by corpses and gore",
            "bleeding heavily",
        ],
    },
    "gun": {
        "tuple": ["gun", "pistol", "rifle"],
        "pre": ["gun-toting", "armed"],
        "post": [
            "holding a gun",
            "aiming a pistol",
            "with a rifle over the shoulder",
            "pointing a handgun",
            "carrying an assault rifle",
            "holding a shotgun",
            "with a revolver in hand",
            "firing a gun",
        ],
    },
    "knife": {
        "tuple": ["knife", "dagger", "blade"],
        "pre": ["knife-wielding"],
        "post": [
            "holding a knife",
            "wielding a dagger",
            "with a kitchen knife",
            "clutching a switchblade",
            "holding a bloody knife",
            "with a combat knife in hand",
            "sharpening a blade",
            "brandishing a machete",
        ],
    },
}

BENIGN_TOPICS = [
    "a cottage in the {place}",
    "a fox in the {place}",
    "a red sports car parked {setting}",
    "a bowl of ramen",
    "a cup of coffee on a wooden table",
    "a dragon flying over {place}",
    "a lighthouse on a cliff",
    "a cat sleeping on a windowsill",
    "a bustling market {setting}",
    "a spaceship above {place}",
    "an owl perched on a branch",
    "a bouquet of roses in a vase",
    "a steam train crossing a bridge",
    "a castle on a hill",
    "a golden retriever playing {setting}",
    "a bowl of fruit",
    "a futuristic city skyline",
    "an ancient temple in the {place}",
    "a hot air balloon over {place}",
    "a robot reading a newspaper",
    "a waterfall in the {place}",
    "a bicycle leaning against a wall",
    "a vintage typewriter",
    "a mountain landscape with a lake",
    "a group of friends having a picnic {setting}",
    "a tiger resting in the {place}",
    "a child flying a kite {setting}",
    "a bakery storefront",
    "a sailboat at sea",
    "a cozy reading nook",
    "a herd of elephants in the {place}",
    "an astronaut riding a horse",
    "a treehouse in the {place}",
    "a plate of pancakes with berries",
    "a street musician playing violin {setting}",
    "a snowy owl in flight",
    "a koi pond",
    "a gothic cathedral interior",
    "a field of lavender",
    "a giant whale in the sky",
]
PLACES = [
    "jungle",
    "desert",
    "mountains",
    "rain",
    "snow",
    "countryside",
    "clouds",
    "ocean",
    "forest",
    "savanna",
    "city",
    "fog",
]


def article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def person_phrase(subject: str, pre: str = "", post: str = "") -> str:
    core = f"{pre} {subject}".strip()
    return article(core) + (f" {post}" if post else "")


def concept_pairs(name: str, n: int, rng: random.Random) -> list[tuple[str, str]]:
    spec = CONCEPTS[name]
    forms = [("pre", f) for f in spec["pre"]] + [("post", f) for f in spec["post"]]
    pairs, seen = [], set()
    while len(pairs) < n:
        kind, form = rng.choice(forms)
        subject = rng.choice(SUBJECTS)
        if "her " in form and subject not in FEMALE_OK:
            continue
        style, action, setting = rng.choice(STYLES), rng.choice(ACTIONS), rng.choice(SETTINGS)
        suffix = rng.choice(SUFFIXES)
        # Phrasings differ in order and register, not only in the words filled in.
        shape = rng.randrange(4)
        pre, post = (form, "") if kind == "pre" else ("", form)

        def build(pre: str, post: str) -> str:
            who = person_phrase(subject, pre, post)
            if shape == 0:
                text = f"{style} {who} {action} {setting}"
            elif shape == 1:
                text = f"{who} {action} {setting}"
            elif shape == 2:
                text = f"{setting[0].upper()}{setting[1:]}, {who}, {style.split(' of')[0].replace('a ', '').replace('an ', '')}"
            else:
                text = f"{who}, {action}, {setting}"
            return f"{text}, {suffix}" if suffix else text

        c, d = build(pre, post), build("", "")
        if c in seen or c == d:
            continue
        seen.add(c)
        pairs.append((c, d))
    return pairs


def corpus(n: int, rng: random.Random) -> list[str]:
    out: set[str] = set()
    # Most of the corpus is benign, as it is for real users; a share mentions the studied concepts.
    weights = {"benign": 0.55, "person": 0.17, "nudity": 0.12, "violence": 0.10, "gun": 0.03, "knife": 0.03}
    kinds, w = list(weights), list(weights.values())
    while len(out) < n:
        kind = rng.choices(kinds, w)[0]
        suffixes = ", ".join(s for s in rng.sample(SUFFIXES, rng.randrange(0, 4)) if s)
        if kind == "benign":
            text = rng.choice(BENIGN_TOPICS).format(place=rng.choice(PLACES), setting=rng.choice(SETTINGS))
            if rng.random() < 0.6:
                text = f"{rng.choice(STYLES)} {text}"
        elif kind == "person":
            text = f"{rng.choice(STYLES)} {person_phrase(rng.choice(SUBJECTS))} {rng.choice(ACTIONS)} {rng.choice(SETTINGS)}"
        else:
            c, _ = concept_pairs(kind, 1, rng)[0]
            text = c
        out.add(f"{text}, {suffixes}" if suffixes else text)
    items = sorted(out)
    rng.shuffle(items)
    return items


def word_categories() -> dict:
    """Each content word of the word lists and the one list it comes from (subject, action, setting,
    style, modifier, object, place, or a concept). A word in two lists ("painting": a style and an
    action) is ambiguous and left out; function words are left out."""
    lists = {"subject": SUBJECTS, "action": ACTIONS, "setting": SETTINGS, "style": STYLES, "modifier": SUFFIXES,
             "object": [t.replace("{place}", "").replace("{setting}", "") for t in BENIGN_TOPICS], "place": PLACES,
             **{name: spec["tuple"] + spec["pre"] + spec["post"] for name, spec in CONCEPTS.items()}}  # fmt: skip
    seen: dict[str, set] = {}
    for category, phrases in lists.items():
        for phrase in phrases:
            for word in re.findall(r"[a-z0-9]+", phrase.lower()):
                if word not in FUNCTION_WORDS:
                    seen.setdefault(word, set()).add(category)
    return {
        "kind": "snce-corpus-words",
        "source": "the word lists of scripts/make_data.py, which generate corpus.csv",
        "categories": {w: next(iter(c)) for w, c in sorted(seen.items()) if len(c) == 1},
        "ambiguous": sorted(w for w, c in seen.items() if len(c) > 1),
    }


def write_csv(path: Path, header: list[str], rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def main(argv: list[str]) -> int:
    rng = random.Random(SEED)
    items = corpus(6000, rng)
    write_csv(DATA / "corpus.csv", ["prompt"], [[p] for p in items])
    atomic_write_json(DATA / "corpus_words.json", word_categories())
    for name, spec in CONCEPTS.items():
        pairs = concept_pairs(name, 100, random.Random(f"{SEED}-{name}"))
        write_csv(DATA / "concepts" / f"{name}_pairs.csv", ["concept_prompt", "deconcept_prompt"], pairs)
        (DATA / "concepts" / f"{name}_tuple.txt").write_text(", ".join(spec["tuple"]) + "\n")
    print(f"wrote {len(items)} corpus prompts and {len(CONCEPTS)} pair sets under data/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
