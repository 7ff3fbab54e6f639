"""Training from a store larger than memory: batches read through a shuffle buffer of contiguous
blocks (every row once an epoch, a pure function of the step, so resume is exact), rows gathered
from the memory-mapped shards, and the choice between loading whole and streaming."""

import numpy as np
import pytest
import torch

from snce_lib.models.encoders import load_sd
from snce_lib.sae.batches import buffered_batch_indices
from snce_lib.sae.collect import collect
from snce_lib.sae.config import TrainConfig, TrainError
from snce_lib.sae.store import StoreRows
from snce_lib.sae.train import train_sae
from tests.test_capture import PROMPTS


def test_buffered_order_reads_every_row_once_an_epoch_from_few_blocks():
    rows = np.sort(np.random.default_rng(0).choice(50_000, 45_000, replace=False))
    steps = [buffered_batch_indices(rows, s, 500, seed=3, buffer_rows=4_000, block=1_000) for s in range(90)]
    seen = np.concatenate(steps)
    assert len(seen) == len(rows) and set(seen.tolist()) == set(rows.tolist())  # one epoch, each row once
    blocks = [len(np.unique(np.searchsorted(rows, b) // 1_000)) for b in steps]
    assert max(blocks) <= 5  # a batch comes from the buffer's 4 blocks (5 where two buffers meet)
    assert all((np.diff(b) > 0).all() for b in steps)  # sorted: sequential reads
    again = buffered_batch_indices(rows, 37, 500, seed=3, buffer_rows=4_000, block=1_000)
    assert np.array_equal(again, steps[37])  # a pure function of the step
    other = buffered_batch_indices(rows, 37, 500, seed=4, buffer_rows=4_000, block=1_000)
    assert not np.array_equal(other, steps[37])
    nxt = np.concatenate([buffered_batch_indices(rows, s, 500, 3, 4_000, 1_000) for s in range(90, 180)])
    assert set(nxt.tolist()) == set(rows.tolist())  # the second epoch too
    with pytest.raises(TrainError, match="must hold at least one batch"):
        buffered_batch_indices(rows, 0, 5_000, 3, 4_000)


@pytest.fixture(scope="module")
def store(tiny_clip_dir, tmp_path_factory):
    enc = load_sd(str(tiny_clip_dir), device="cpu")
    return collect(enc, PROMPTS * 30, tmp_path_factory.mktemp("st") / "st", layer=2, keep_padding=4,
                   shard_prompts=64, progress=False)  # fmt: skip


def test_store_rows_gather_what_the_loaded_store_holds(store):
    full, rows = store.load(), store.rows()
    assert len(store.info.shards) > 2 and rows.shape == full.shape
    idx = np.random.default_rng(0).permutation(len(full))[:700]  # across shards, unsorted
    assert np.array_equal(rows[idx].numpy(), full[idx]) and np.array_equal(
        rows[torch.as_tensor(idx)].numpy(), full[idx]
    )
    assert np.array_equal(rows[5:300].numpy(), full[5:300])
    with pytest.raises(IndexError, match="out of range"):
        rows[np.array([len(full)])]


def test_training_source_loads_small_stores_and_streams_large_ones(store):
    data, buffer = store.training_source()
    assert isinstance(data, np.ndarray) and buffer is None
    data, buffer = store.training_source(max_bytes=200 * 2 * store.width)
    assert isinstance(data, StoreRows) and buffer == 200


def test_streaming_trains_as_the_loaded_rows_do_and_resumes_exactly(store, tmp_path):
    cfg = TrainConfig(n_latents=64, k=4, batch_size=128, tokens=30 * 128, shuffle_buffer=512, checkpoint_every=5,
                      eval_rows=256)  # fmt: skip
    loaded = train_sae(store.load(), cfg, progress=False)
    streamed = train_sae(store.rows(), cfg, out_dir=tmp_path / "s", progress=False, stop_after_steps=12)
    streamed = train_sae(store.rows(), cfg, out_dir=tmp_path / "s", progress=False)  # resumed at step 10
    for k, v in loaded.sae.state_dict().items():
        assert torch.allclose(v, streamed.sae.state_dict()[k], atol=1e-6), k
    assert loaded.metrics["fvu"] == pytest.approx(streamed.metrics["fvu"], rel=1e-5)
    whole = train_sae(store.load(), TrainConfig(**{**cfg.__dict__, "shuffle_buffer": None}), progress=False)
    assert not torch.equal(whole.sae.W_dec, loaded.sae.W_dec)  # the buffer changes the order, as it should
