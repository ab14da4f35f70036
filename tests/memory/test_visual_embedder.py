from __future__ import annotations

import numpy as np
import pytest

from corrigible.errors import ConfigError
from corrigible.memory.visual_embedder import (
    DESCRIPTOR_DIM,
    compare,
    embed_crop,
    render_crop,
    segment_object,
    shape_features,
)

RED = (200, 30, 30)
BLUE = (30, 40, 200)
THRESHOLD = 0.75  # KnowledgeBaseConfig.visual_threshold


def describe(shape, color=RED, *, size_px=40, angle=0.0, seed=0, shading=0.35, mpp=0.001):
    rgb, _ = render_crop(shape, color, size_px=size_px, angle_deg=angle, seed=seed, shading=shading)
    return embed_crop(rgb, metres_per_pixel=mpp)


def test_descriptor_is_a_unit_float32_vector():
    vector = describe("cube")
    assert vector.shape == (DESCRIPTOR_DIM,) and vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("size_px", [30, 40, 56])
@pytest.mark.parametrize("shape", ["cube", "cylinder"])
def test_same_object_in_new_pose_and_light_matches(shape, size_px):
    reference = describe(shape, size_px=size_px)
    for angle, shading, seed in [(15, 0.0, 1), (30, 0.6, 2), (45, 0.35, 3), (70, 0.2, 4)]:
        other = describe(shape, size_px=size_px, angle=angle, seed=seed, shading=shading)
        assert compare(reference, other)["score"] >= THRESHOLD, (angle, shading)


@pytest.mark.parametrize("size_px", [30, 40, 56])
def test_red_cube_and_red_cylinder_are_told_apart_by_shape(size_px):
    for angle in range(0, 90, 15):
        cube = describe("cube", size_px=size_px, angle=angle, seed=angle)
        cylinder = describe("cylinder", size_px=size_px, seed=angle + 1)
        result = compare(cube, cylinder)
        assert result["colour"] > 0.95  # same colour ...
        assert result["shape"] < 0.5  # ... different shape
        assert result["score"] < THRESHOLD


def test_small_and_large_block_are_told_apart_by_metric_size():
    small = describe("cube", size_px=30)  # 3 cm at 1 mm / px
    large = describe("cube", size_px=50)  # 5 cm
    result = compare(small, large)
    assert result["colour"] > 0.95 and result["shape"] > 0.9
    assert result["size"] < 0.3 and result["score"] < THRESHOLD


def test_size_is_compared_only_when_scale_is_known():
    no_scale = describe("cube", mpp=None)
    result = compare(no_scale, describe("cube", angle=20, seed=5))
    assert result["size"] is None and result["score"] >= THRESHOLD


def test_size_from_depth_and_focal_length():
    rgb, mask = render_crop("cube", RED, size_px=40)
    depth = np.full(mask.shape, 0.6, dtype=np.float32)  # 0.6 m away, f = 600 px -> 1 mm / px
    from_depth = embed_crop(rgb, mask, depth=depth, focal_px=600.0)
    direct = embed_crop(rgb, mask, metres_per_pixel=0.001)
    assert np.allclose(from_depth, direct, atol=1e-6)


def test_colour_differs():
    assert compare(describe("cube"), describe("cube", BLUE))["score"] < 0.2


def test_segmentation_recovers_the_rendered_mask():
    for shape in ("cube", "cylinder"):
        rgb, mask = render_crop(shape, RED, angle_deg=30)
        estimated = segment_object(rgb)
        iou = (estimated & mask).sum() / (estimated | mask).sum()
        assert iou > 0.95


def test_shape_features_of_square_and_disc():
    _, square = render_crop("cube", RED, size_px=60, angle_deg=30)
    _, disc = render_crop("cylinder", RED, size_px=60)
    assert shape_features(square)["fill"] > 0.95
    assert shape_features(disc)["fill"] == pytest.approx(np.pi / 4, abs=0.04)
    assert shape_features(disc)["circularity"] > 0.95


@pytest.mark.parametrize(
    ("rgb", "message"),
    [
        (np.zeros((32, 32), dtype=np.uint8), "HxWx3"),
        (np.zeros((4, 4, 3), dtype=np.uint8), "at least 8x8"),
        (np.full((32, 32, 3), 120, dtype=np.uint8), "no object"),
    ],
    ids=["grey-2d", "tiny", "blank"],
)
def test_bad_crops_raise_clear_errors(rgb, message):
    with pytest.raises(ConfigError, match=message):
        embed_crop(rgb)


def test_mask_and_depth_shape_mismatch_is_an_error():
    rgb, mask = render_crop("cube", RED)
    with pytest.raises(ConfigError, match="mask shape"):
        embed_crop(rgb, mask[:10])
    with pytest.raises(ConfigError, match="focal_px"):
        embed_crop(rgb, mask, depth=np.ones(mask.shape))


def test_compare_rejects_descriptors_of_another_version():
    with pytest.raises(ConfigError, match="length"):
        compare(np.ones(10), describe("cube"))
