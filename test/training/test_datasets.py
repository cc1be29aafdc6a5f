"""Data set readers on tiny fake trees in each official layout, the label maps and the factory."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from causal_tune_ros.errors import DatasetError
from causal_tune_ros.synthetic import render_scene
from causal_tune_ros.training.datasets import (
    ACDCDataset,
    BDD100KDataset,
    CityscapesDataset,
    GTAVDataset,
    MapillaryDataset,
    SyntheticDataset,
    build_dataset,
)
from causal_tune_ros.training.datasets.base import encode_palette_png
from causal_tune_ros.training.datasets.label_maps import VISTAS_V12_CLASSES

H, W = 8, 16

# Source ids -> expected train ids, written out here (not taken from the package's tables).
CITYSCAPES_CASES = {7: 0, 8: 1, 11: 2, 17: 5, 23: 10, 24: 11, 26: 13, 33: 18, 0: 255, 6: 255, 9: 255, 30: 255}
VISTAS_CASES = {
    13: 0,
    24: 0,
    41: 0,
    2: 1,
    15: 1,
    17: 2,
    27: 10,
    55: 13,
    61: 14,
    52: 18,
    8: 255,
    65: 255,
    44: 255,
}


def _ids_image(cases: dict[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """An (H, W) image of source ids covering every case, and the train ids it must map to."""
    rng = np.random.default_rng(seed)
    src = np.array(list(cases), np.uint8)
    ids = rng.choice(src, (H, W))
    ids.flat[: len(src)] = src  # every case appears at least once
    lut = np.full(256, 255, np.uint8)
    for k, v in cases.items():
        lut[k] = v
    return ids, lut[ids]


def _rgb(seed: int) -> np.ndarray:
    return np.random.default_rng(100 + seed).integers(0, 256, (H, W, 3)).astype(np.uint8)


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 else array
    assert cv2.imwrite(str(path), data)


def _write_jpg(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 100])


def _write_palette(path: Path, ids: np.ndarray, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    palette = np.random.default_rng(n).integers(0, 256, (n, 3)).astype(np.uint8)
    palette[:, 0] = np.arange(n)  # distinct colours, like the real palettes
    path.write_bytes(encode_palette_png(ids, palette))


def _check(item: dict, rgb: np.ndarray | None, labels: np.ndarray, condition: str, name: str) -> None:
    assert item["image"].dtype == np.uint8 and item["image"].shape == (H, W, 3)
    if rgb is not None:
        np.testing.assert_array_equal(item["image"], rgb)
    assert item["labels"].dtype == np.uint8
    np.testing.assert_array_equal(item["labels"], labels)
    assert item["condition"] == condition
    assert item["name"] == name


# --------------------------------------------------------------------------------------------- cityscapes
def _cityscapes(root: Path) -> dict[str, tuple]:
    expected = {}
    for k, (city, stem) in enumerate([("aachen", "aachen_000000_000019"), ("bonn", "bonn_000001_000019")]):
        rgb = _rgb(k)
        _write_png(root / "leftImg8bit" / "train" / city / f"{stem}_leftImg8bit.png", rgb)
        ids, train = _ids_image(CITYSCAPES_CASES, k)
        _write_png(root / "gtFine" / "train" / city / f"{stem}_gtFine_labelIds.png", ids)
        if k == 1:  # a trainIds file takes precedence over labelIds
            train = np.where(train == 255, 255, 18 - np.minimum(train, 18)).astype(np.uint8)
            _write_png(root / "gtFine" / "train" / city / f"{stem}_gtFine_labelTrainIds.png", train)
        expected[f"{city}/{stem}"] = (rgb, train)
    return expected


def test_cityscapes_maps_label_ids_and_prefers_train_ids(tmp_path: Path) -> None:
    expected = _cityscapes(tmp_path)
    ds = CityscapesDataset(tmp_path, "train")
    assert len(ds) == 2 and ds.conditions == ["clear"]
    for i, (name, (rgb, train)) in enumerate(sorted(expected.items())):
        _check(ds[i], rgb, train, "clear", name)
    assert set(np.unique(ds[0]["labels"])) == set(CITYSCAPES_CASES.values())
    with pytest.raises(IndexError):
        ds[2]


def test_cityscapes_missing_folder_and_missing_label(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "leftImg8bit" / "val"))):
        CityscapesDataset(tmp_path, "val")
    _cityscapes(tmp_path)
    (tmp_path / "gtFine" / "train" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png").unlink()
    with pytest.raises(DatasetError, match=re.escape("aachen_000000_000019_leftImg8bit.png has no label")):
        CityscapesDataset(tmp_path, "train")


def test_unreadable_files_raise_dataset_error(tmp_path: Path) -> None:
    _cityscapes(tmp_path)
    label = tmp_path / "gtFine" / "train" / "bonn" / "bonn_000001_000019_gtFine_labelTrainIds.png"
    label.write_bytes(b"not a png at all")
    ds = CityscapesDataset(tmp_path, "train")
    ds[0]  # the other pair still reads
    with pytest.raises(DatasetError, match=re.escape("bonn_000001_000019_gtFine_labelTrainIds.png")):
        ds[1]
    image = tmp_path / "leftImg8bit" / "train" / "aachen" / "aachen_000000_000019_leftImg8bit.png"
    image.write_bytes(b"")
    with pytest.raises(DatasetError, match="empty"):
        ds[0]


# --------------------------------------------------------------------------------------------- acdc
def _acdc(root: Path, split: str = "val") -> dict[str, tuple]:
    expected = {}
    for k, cond in enumerate(["fog", "night", "snow"]):
        stem = f"GOPR0{k}76_frame_000{k}54"
        rgb = _rgb(k)
        _write_png(root / "rgb_anon" / cond / split / f"GOPR0{k}76" / f"{stem}_rgb_anon.png", rgb)
        ids, train = _ids_image(CITYSCAPES_CASES, 10 + k)
        folder = root / "gt" / cond / split / f"GOPR0{k}76"
        if cond == "night":  # train ids given directly
            _write_png(folder / f"{stem}_gt_labelTrainIds.png", train)
        else:
            _write_png(folder / f"{stem}_gt_labelIds.png", ids)
        expected[cond] = (rgb, train, f"{cond}/GOPR0{k}76/{stem}")
    return expected


def test_acdc_conditions_and_label_maps(tmp_path: Path) -> None:
    expected = _acdc(tmp_path)
    ds = ACDCDataset(tmp_path, "val", conditions="night,fog")
    assert len(ds) == 2 and ds.conditions == ["night", "fog"]
    for item in (ds[0], ds[1]):
        rgb, train, name = expected[item["condition"]]
        _check(item, rgb, train, item["condition"], name)
    snow = ACDCDataset(tmp_path, "val", conditions=["snow"])
    _check(snow[0], *expected["snow"][:2], "snow", expected["snow"][2])


def test_acdc_errors(tmp_path: Path) -> None:
    _acdc(tmp_path)
    with pytest.raises(DatasetError, match="rain"):  # all four by default; rain is not there
        ACDCDataset(tmp_path, "val")
    with pytest.raises(DatasetError, match=re.escape(str(Path("rgb_anon") / "rain" / "val"))):
        ACDCDataset(tmp_path, "val", conditions="rain")
    with pytest.raises(DatasetError, match="unknown condition"):
        ACDCDataset(tmp_path, "val", conditions="sandstorm")
    with pytest.raises(DatasetError, match=re.escape(str(Path("gt") / "fog" / "test"))):
        (tmp_path / "rgb_anon" / "fog" / "test" / "x").mkdir(parents=True)
        ACDCDataset(tmp_path, "test", conditions="fog")


# --------------------------------------------------------------------------------------------- gtav
def test_gtav_palette_labels_and_size_mismatch(tmp_path: Path) -> None:
    ids, train = _ids_image(CITYSCAPES_CASES, 3)
    _write_palette(tmp_path / "labels" / "00001.png", ids, 34)
    rgb = _rgb(3)
    _write_png(tmp_path / "images" / "00001.png", rgb)
    big = np.repeat(np.repeat(_rgb(4), 2, 0), 2, 1)  # image twice the label's size
    _write_png(tmp_path / "images" / "00002.png", big)
    _write_palette(tmp_path / "labels" / "00002.png", ids, 34)
    ds = build_dataset("gta5", tmp_path, "all")
    assert isinstance(ds, GTAVDataset) and len(ds) == 2
    _check(ds[0], rgb, train, "mixed", "00001")
    _check(ds[1], None, train, "mixed", "00002")
    with pytest.raises(DatasetError, match="split"):
        GTAVDataset(tmp_path, "val")
    (tmp_path / "labels" / "00002.png").unlink()
    with pytest.raises(DatasetError, match=re.escape("00002.png has no label")):
        GTAVDataset(tmp_path)


# --------------------------------------------------------------------------------------------- bdd100k
@pytest.mark.parametrize("layout", ["current", "old"])
def test_bdd100k_layouts(tmp_path: Path, layout: str) -> None:
    rng = np.random.default_rng(7)
    train = rng.integers(0, 19, (H, W)).astype(np.uint8)
    train[0, :3] = 255
    stored = train.copy()
    stored[1, 0] = 19  # not a train id: must become 255
    expected = train.copy()
    expected[1, 0] = 255
    rgb = np.full((H, W, 3), (40, 120, 200), np.uint8)  # flat colour survives JPEG almost exactly
    if layout == "current":
        _write_jpg(tmp_path / "images" / "10k" / "val" / "7d2f7975-e0c1c5a7.jpg", rgb)
        _write_png(tmp_path / "labels" / "sem_seg" / "masks" / "val" / "7d2f7975-e0c1c5a7.png", stored)
    else:
        _write_jpg(tmp_path / "seg" / "images" / "val" / "7d2f7975-e0c1c5a7.jpg", rgb)
        _write_png(tmp_path / "seg" / "labels" / "val" / "7d2f7975-e0c1c5a7_train_id.png", stored)
    ds = BDD100KDataset(tmp_path, "val")
    item = ds[0]
    _check(item, None, expected, "mixed", "7d2f7975-e0c1c5a7")
    assert np.abs(item["image"].astype(int) - rgb).max() <= 3
    with pytest.raises(DatasetError, match="train"):
        BDD100KDataset(tmp_path, "train")


# --------------------------------------------------------------------------------------------- mapillary
@pytest.mark.parametrize("labels_dir", ["v1.2/labels", "labels"])
def test_mapillary_vistas_mapping(tmp_path: Path, labels_dir: str) -> None:
    ids, train = _ids_image(VISTAS_CASES, 9)
    _write_palette(tmp_path / "validation" / labels_dir / "M2kh294N9c72sICO990Uew.png", ids, 66)
    _write_jpg(tmp_path / "validation" / "images" / "M2kh294N9c72sICO990Uew.jpg", _rgb(9))
    ds = build_dataset("vistas", tmp_path, "val")
    assert isinstance(ds, MapillaryDataset)
    _check(ds[0], None, train, "mixed", "M2kh294N9c72sICO990Uew")
    with pytest.raises(DatasetError, match="training"):
        MapillaryDataset(tmp_path, "train")


def test_mapillary_class_list_matches_documented_ids() -> None:
    assert len(VISTAS_V12_CLASSES) == 66
    names = {
        13: "construction--flat--road",
        27: "nature--sky",
        55: "object--vehicle--car",
        65: "void--unlabeled",
    }
    for i, n in names.items():
        assert VISTAS_V12_CLASSES[i] == n


# --------------------------------------------------------------------------------------------- synthetic
def test_synthetic_dataset_is_paired_deterministic_and_split_aware() -> None:
    ds = build_dataset("synthetic", None, "val", num_samples=4, conditions="clear,night", height=48, width=96)
    assert isinstance(ds, SyntheticDataset) and len(ds) == 4
    a, b = ds[0], ds[1]
    assert (a["condition"], b["condition"]) == ("clear", "night")
    np.testing.assert_array_equal(a["labels"], b["labels"])  # same scene, two conditions
    assert a["image"].shape == (48, 96, 3) and a["labels"].dtype == np.uint8
    assert a["name"] == "synthetic/val/000000_clear"
    again = SyntheticDataset(4, ["clear", "night"], seed=0, height=48, width=96, split="val")
    np.testing.assert_array_equal(again[1]["image"], b["image"])
    frame = render_scene(ds.scene_seed(0), "night", 48, 96)
    np.testing.assert_array_equal(frame.image, b["image"])
    train = SyntheticDataset(4, ["clear", "night"], seed=0, height=48, width=96, split="train")
    assert not np.array_equal(train[0]["labels"], a["labels"])
    assert not np.array_equal(ds[2]["labels"], a["labels"])  # next scene
    with pytest.raises(DatasetError, match="unknown condition"):
        SyntheticDataset(2, "hail")


def test_build_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown data set 'kitti'"):
        build_dataset("kitti", tmp_path)
    with pytest.raises(DatasetError, match="needs a root"):
        build_dataset("cityscapes", None, "train")
    with pytest.raises(DatasetError, match="unknown option"):
        build_dataset("synthetic", None, "train", num_samples=2, colour="blue")
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "leftImg8bit" / "train"))):
        build_dataset("cityscapes", tmp_path, "train")
