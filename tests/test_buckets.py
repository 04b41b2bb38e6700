"""Aspect-ratio buckets (engine.buckets, issue 11): the bucket list's sides and pixel counts,
each image's bucket and the upscale cap, the batch order (one bucket per batch, a pure function
of the seed, disjoint per process)."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from engine.buckets import (
    MAX_RATIO,
    MAX_UPSCALE,
    TOLERANCE,
    batch_at,
    bucket_list,
    bucket_of,
    cover_and_crop,
    epoch_batches,
)


@pytest.mark.parametrize(("resolution", "step"), [(512, 64), (768, 64), (1024, 64), (64, 16)])
def test_buckets_have_sides_multiple_of_step_and_about_the_resolutions_pixels(resolution, step):
    buckets = bucket_list(resolution, step)
    assert (resolution, resolution) in buckets
    assert len(buckets) >= 3  # a square, a wide and a tall one at least
    for w, h in buckets:
        assert w % step == 0 and h % step == 0
        assert max(w, h) / min(w, h) <= MAX_RATIO
        # height rounded to the nearest multiple of step: off by at most step/2 rows of the longer side
        assert abs(w * h - resolution**2) <= step / 2 * max(w, h)
        assert abs(w * h - resolution**2) <= TOLERANCE * resolution**2
    assert TOLERANCE == 0.1
    assert sorted(buckets) == sorted({(h, w) for w, h in buckets})  # tall mirrors wide


def test_an_image_goes_to_the_bucket_nearest_its_aspect_ratio():
    buckets = bucket_list(1024)
    assert bucket_of(1024, 1024, buckets) == (1024, 1024)
    w, h = bucket_of(3000, 2000, buckets)
    assert w > h
    best = min(abs(math.log(bw / bh) - math.log(1.5)) for bw, bh in buckets)
    assert abs(math.log(w / h) - math.log(1.5)) == best
    w, h = bucket_of(2000, 3000, buckets)
    assert h > w


def test_an_image_is_never_upscaled_more_than_the_cap():
    buckets = bucket_list(1024)
    assert bucket_of(1024 // 2, 1024 // 2, buckets) == (1024, 1024)  # exactly MAX_UPSCALE
    assert MAX_UPSCALE == 2.0
    assert bucket_of(1024 // 2 - 1, 1024 // 2 - 1, buckets) is None


def test_cover_and_crop_keeps_the_aspect_and_crops_to_the_bucket():
    (rw, rh), (left, top) = cover_and_crop(3000, 2000, (1216, 832))
    assert rw >= 1216 and rh >= 832 and (rw == 1216 or rh == 832)
    assert abs(rw / rh - 1.5) < 0.01
    assert left + 1216 <= rw and top + 832 <= rh


def _shapes():
    sizes = [(64, 64)] * 5 + [(80, 48)] * 3 + [(48, 80)] * 4
    return sizes


def test_every_batch_is_one_bucket_and_full():
    image_buckets = _shapes()
    for epoch in range(4):
        batches = epoch_batches(image_buckets, 2, seed=7, epoch=epoch)
        assert len(batches) == 3 + 2 + 2
        for batch in batches:
            assert len(batch) == 2
            assert len({image_buckets[i] for i in batch}) == 1
        # every image is drawn each epoch
        assert {i for b in batches for i in b} == set(range(len(image_buckets)))


def test_the_order_is_a_pure_function_of_the_seed():
    image_buckets = _shapes()
    first = [batch_at(image_buckets, 2, 3, k) for k in range(30)]
    again = [batch_at(image_buckets, 2, 3, k) for k in range(30)]
    assert first == again
    other = [batch_at(image_buckets, 2, 4, k) for k in range(30)]
    assert first != other
    # epochs differ from each other
    assert epoch_batches(image_buckets, 2, 3, 0) != epoch_batches(image_buckets, 2, 3, 1)


def test_processes_draw_disjoint_batches_covering_the_sequence():
    image_buckets = [(64, 64)] * 6 + [(80, 48)] * 6
    per_epoch = len(epoch_batches(image_buckets, 2, 5, 0))
    assert per_epoch == 6
    ranks = [[batch_at(image_buckets, 2, 5, k, r, 2) for k in range(3)] for r in range(2)]
    # one epoch split between two processes: no image twice, every image once
    drawn = Counter(i for rank in ranks for batch in rank for i in batch)
    assert sorted(drawn) == list(range(12)) and set(drawn.values()) == {1}
    # the same as the single-process sequence interleaved
    single = [batch_at(image_buckets, 2, 5, k) for k in range(6)]
    assert single == [ranks[g % 2][g // 2] for g in range(6)]
