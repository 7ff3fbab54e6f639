"""The family-against-one-neuron table and its verdict lines read what the rows say: the lowest target
rate of each kind of row, a cover that is only the top-1 latent again, and a missing family row."""

from snce_lib.evaluation.methods_table import family_verdict, family_vs_single


def _row(method, lam, target_rate, neurons, world="clip", target="red"):
    return {"world": world, "target": target, "method": method, "lam": lam, "top_k": 1, "target_rate": target_rate,
            "attack_rate": target_rate, "other_colour_acc": 1.0, "other_shape_acc": 1.0, "n_prompts": 16,
            "neurons": neurons, "deconcept_tolerance": 0.01}  # fmt: skip


def test_the_verdict_names_the_best_row_of_each_kind_and_a_cover_that_is_top1_again():
    rows = [_row("none", 0.0, 1.0, []), _row("snce top-1 strict, mode B", 1.0, 1.0, [9]),
            _row("snce top-1 strict, mode B", 4.0, 0.25, [9]), _row("snce cover tol 1%, mode B", 1.0, 0.5, [9]),
            _row("snce cover tol 1%, mode B", 2.0, 0.75, [9])]  # fmt: skip
    (line,) = family_verdict(rows)
    assert line.startswith("clip red (n = 16 a set)")
    assert "one latent (1 latent(s)) at best 0.25 at λ 4" in line
    assert "cover (1 latent(s)) at best 0.50 at λ 1" in line
    assert "latent family: no row" in line and "the cover is a top-1 latent again" in line
    table = family_vs_single(rows)
    assert len(table) == 5 and table["latents"].max() == 1
    assert table.loc[("clip", "red", "snce top-1 strict, mode B, λ 4"), "target rate"].startswith("0.25 [")


def test_a_cover_of_other_latents_is_not_called_top1_again():
    rows = [_row("snce top-1 strict, mode B", 1.0, 1.0, [9]), _row("snce cover tol 1%, mode B", 1.0, 0.0, [9, 12]),
            _row("latent family, mode B", 1.0, 0.5, [3, 4, 5])]  # fmt: skip
    (line,) = family_verdict(rows)
    assert "cover (2 latent(s)) at best 0.00" in line and "latent family (3 latent(s)) at best 0.50" in line
    assert "again" not in line and "no row" not in line
