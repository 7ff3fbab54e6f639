"""Running the compared methods where no images exist (the offline encoder's nudity prompts): what each
method leaves in the text features (`concept_rows`)."""

from __future__ import annotations

from collections.abc import Sequence

from snce_lib.concepts.leakage import pooled_output, probe_leakage
from snce_lib.evaluation.comparison import Entry


def concept_rows(enc, sae, pairs, entries: Sequence[Entry], positives: Sequence[str], negatives: Sequence[str],
                 held, world: str = "offline") -> list[dict]:  # fmt: skip
    """Where no images exist (the offline encoder's nudity prompts): per method, the probe leakage on
    the pooled final output (`positives` vs `negatives`, fixed and retrained probe), and the held-out
    check (`concepts.heldout`) after the edit: a probe fitted on the unedited pairs scored on the
    held-out concept prompts against the look-alikes and the neutral prompts, and, for methods that
    edit SAE latents, those latents as a detector on the same sets."""
    from tqdm.auto import tqdm

    from snce_lib.concepts.heldout import fit_output_probe, neuron_detectors, probe_detector

    probe = fit_output_probe(enc, pairs.concept_prompts, pairs.deconcept_prompts)
    # every latent-editing method as a detector, in one pass over the held-out sets' codes
    with_latents = {i: list(e.obj.neurons) for i, e in enumerate(entries) if getattr(e.obj, "neurons", None)}
    measured = ("probe_auroc_before", "probe_auroc_fixed", "probe_auroc_retrained", "heldout_probe_auroc_vs_lookalike",
                "heldout_probe_auroc_vs_neutral", "heldout_latents_auroc_vs_lookalike",
                "heldout_latents_auroc_vs_neutral")  # fmt: skip
    latent_rows = dict(zip(with_latents, neuron_detectors(enc, sae, with_latents, held)))
    before = [pooled_output(enc, list(positives)), pooled_output(enc, list(negatives))]
    rows = []
    for i, e in enumerate(tqdm([Entry("none", None, None, None), *entries], desc=f"{world}/{pairs.name}")):
        if e.note and e.obj is None:  # nothing to run (no latent passed): recorded, not measured
            rows.append({"world": world, "target": pairs.name, "method": e.method, "lam": None, "top_k": e.top_k,
                         **dict.fromkeys(measured), "n_positives": len(positives), "n_negatives": len(negatives),
                         "n_heldout": held.sizes, **e.record()})  # fmt: skip
            continue
        after = before if e.obj is None else [pooled_output(enc, list(p), e.obj) for p in (positives, negatives)]
        leak = probe_leakage(before[0], before[1], after[0], after[1])
        hp = probe_detector(enc, probe, held, e.obj)
        hn = latent_rows.get(i - 1, {})  # entry i - 1: row 0 is the unedited model
        rows.append({
            "world": world, "target": pairs.name, "method": e.method, "lam": e.lam, "top_k": e.top_k,
            "probe_auroc_before": leak.auroc_before, "probe_auroc_fixed": leak.auroc_fixed_probe,
            "probe_auroc_retrained": leak.auroc_retrained, "probe_ci95_before": leak.ci95_before,
            "probe_ci95_fixed": leak.ci95_fixed, "probe_ci95_retrained": leak.ci95_retrained,
            "heldout_probe_ci95_vs_lookalike": hp["ci95_vs_lookalike"], "heldout_probe_ci95_vs_neutral": hp["ci95_vs_neutral"],
            "heldout_latents_ci95_vs_lookalike": hn.get("ci95_vs_lookalike"),
            "heldout_latents_ci95_vs_neutral": hn.get("ci95_vs_neutral"),
            "heldout_probe_auroc_vs_lookalike": hp["auroc_vs_lookalike"],
            "heldout_probe_auroc_vs_neutral": hp["auroc_vs_neutral"],
            "heldout_latents_auroc_vs_lookalike": hn.get("auroc_vs_lookalike"),
            "heldout_latents_auroc_vs_neutral": hn.get("auroc_vs_neutral"),
            "n_positives": len(positives), "n_negatives": len(negatives), "n_heldout": held.sizes,
            **e.record(),
        })  # fmt: skip
    return rows
