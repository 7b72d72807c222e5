"""Real-data loaders (Karpathy Flickr30K/COCO, VATEX) on the tiny fixtures in data/fixtures/.

The fixtures are written by scripts/make_fixtures.py in the exact formats of the real files;
every image is one known colour where the centre crop keeps it (black where the crop cuts),
frame k of clip v has green 20 k + 10, and row t of a feature file has t in column 0.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastslow_lib.data.datasets import RetrievalProtocol, TrainPairs
from fastslow_lib.data.karpathy import KARPATHY_SPLITS, load_karpathy
from fastslow_lib.data.real import CaptionedSplit, DatasetMissingError, load_image
from fastslow_lib.data.vatex import frame_files, frame_indices, load_vatex

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"
FLICKR_JSON = FIXTURES / "flickr30k" / "dataset_flickr30k.json"
FLICKR_IMAGES = FIXTURES / "flickr30k" / "images"
COCO_JSON = FIXTURES / "coco" / "dataset_coco.json"
COCO_IMAGES = FIXTURES / "coco" / "images"
VATEX_JSON = FIXTURES / "vatex" / "vatex_fixture.json"
VATEX_FRAMES = FIXTURES / "vatex" / "frames"
VATEX_FEATURES = FIXTURES / "vatex" / "features"
VIDEO_IDS = ["Ptf_2VRj-V0_000122_000132", "--DRV1xeAPk_000010_000020",
             "0lh_UWF9ZP4_000031_000041"]
FIRST_CAPTION = "Two young guys with shaggy hair look at their hands while hanging out in the yard."
#: Interior colours of the Flickr30K fixture images, by file name (see scripts/make_fixtures.py).
FLICKR_COLOURS = {
    "1000092795.jpg": (200, 40, 40), "10002456.jpg": (40, 200, 40),
    "1000268201.jpg": (40, 40, 200), "1000344755.jpg": (200, 200, 40),
    "1000366164.jpg": (200, 40, 200), "1000523639.jpg": (40, 200, 200),
}
TOL = 4  # JPEG: the fixtures are saved at quality 95 without chroma subsampling


def close_to(pixels: np.ndarray, colour: tuple[int, int, int]) -> bool:
    """Every pixel of ``pixels`` (..., 3) within TOL of ``colour`` in every channel."""
    return bool(np.abs(pixels.astype(int) - np.asarray(colour)).max() <= TOL)


def copy_fixture(tmp_path: Path, name: str) -> Path:
    """A writable copy of data/fixtures/<name> under tmp_path, to break."""
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def write_json(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_fixtures_are_small_and_in_place():
    files = [p for p in FIXTURES.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 200_000
    assert len(list(FLICKR_IMAGES.glob("*.jpg"))) == 6
    assert {p.parent.name for p in COCO_IMAGES.rglob("*.jpg")} == {"train2014", "val2014"}
    assert sorted(p.name for p in VATEX_FRAMES.iterdir()) == sorted(VIDEO_IDS)


# --------------------------------------------------------------------------------------------
# load_image, CaptionedSplit, DatasetMissingError
# --------------------------------------------------------------------------------------------


def test_load_image_centre_crops_landscape_and_portrait(tmp_path):
    for size in ((40, 30), (30, 40)):  # (width, height)
        arr = np.zeros((size[1], size[0], 3), dtype=np.uint8)  # black bands on the long side
        top, left = (size[1] - 30) // 2, (size[0] - 30) // 2
        arr[top:top + 30, left:left + 30] = (10, 20, 30)
        path = tmp_path / f"{size[0]}x{size[1]}.png"
        Image.fromarray(arr).save(path)
        out = load_image(path, 12)
        assert out.shape == (12, 12, 3) and out.dtype == np.uint8
        assert (out == np.array([10, 20, 30], dtype=np.uint8)).all()  # lossless: exact


def test_load_image_converts_to_rgb_and_keeps_layout(tmp_path):
    arr = np.zeros((8, 8), dtype=np.uint8)
    arr[:, 4:] = 255  # left half black, right half white, in greyscale
    Image.fromarray(arr, mode="L").save(tmp_path / "grey.png")
    out = load_image(tmp_path / "grey.png", 8)
    assert out.shape == (8, 8, 3)
    assert (out[:, :4] == 0).all() and (out[:, 4:] == 255).all()


def test_load_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"image file not found: .*nope\.jpg"):
        load_image(tmp_path / "nope.jpg", 8)
    (tmp_path / "bad.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(OSError, match=r"cannot read image .*bad\.jpg"):
        load_image(tmp_path / "bad.jpg", 8)
    good = (FLICKR_IMAGES / "1000092795.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(good[: len(good) // 2])
    with pytest.raises(OSError, match=r"cannot read image .*truncated\.jpg"):
        load_image(tmp_path / "truncated.jpg", 8)
    with pytest.raises(ValueError, match="image_size must be at least 1"):
        load_image(FLICKR_IMAGES / "1000092795.jpg", 0)


def test_dataset_missing_error_message_and_pickle(tmp_path):
    err = DatasetMissingError("the thing", tmp_path / "thing.json", "ask for it nicely")
    assert isinstance(err, FileNotFoundError)
    assert str(err) == (f"the thing not found: expected at {tmp_path / 'thing.json'}\n"
                        f"How to get it: ask for it nicely")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and back.how == "ask for it nicely"


def test_captioned_split_truth_len_and_validation():
    split = CaptionedSplit("x", np.zeros((3, 4, 4, 3), np.uint8), list("abcdef"),
                           np.array([0, 0, 1, 1, 2, 2]), ["a", "b", "c"])
    assert len(split) == 3
    assert split.truth.shape == (6, 3) and split.truth.dtype == bool
    assert (split.truth == np.repeat(np.eye(3, dtype=bool), 2, axis=0)).all()
    with pytest.raises(ValueError, match="one entry per caption"):
        CaptionedSplit("x", None, ["a", "b"], np.array([0]), ["a"])
    with pytest.raises(ValueError, match="non-decreasing"):
        CaptionedSplit("x", None, ["a", "b"], np.array([1, 0]), ["a", "b"])
    with pytest.raises(ValueError, match=r"images holds 2 items but ids names 3"):
        CaptionedSplit("x", np.zeros((2, 4, 4, 3), np.uint8), ["a"] * 3, np.arange(3),
                       ["a", "b", "c"])


# --------------------------------------------------------------------------------------------
# Karpathy splits: Flickr30K and COCO
# --------------------------------------------------------------------------------------------


def test_flickr_train_includes_restval_in_file_order():
    split = load_karpathy(FLICKR_JSON, FLICKR_IMAGES, "train", image_size=16)
    assert split.name == "flickr30k-train"
    assert split.ids == ["1000092795.jpg", "1000268201.jpg", "1000344755.jpg", "1000523639.jpg"]
    assert split.images.shape == (4, 16, 16, 3) and split.images.dtype == np.uint8
    assert split.features is None
    assert len(split) == 4 and len(split.captions) == 20
    assert split.caption_image.dtype == np.int64
    assert split.caption_image.tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    assert split.captions[0] == FIRST_CAPTION  # raw sentence, surrounding spaces stripped
    assert split.captions[4] == "Two friends enjoy time spent together."
    assert split.captions[5] == ("A child in a pink dress is climbing up a set of stairs in an "
                                 "entry way.")
    assert split.captions[10].startswith("Someone in a blue shirt")  # the restval image
    for name, image in zip(split.ids, split.images, strict=True):
        assert close_to(image, FLICKR_COLOURS[name])  # whole square: the black bands cropped


def test_flickr_split_filtering_and_restval_flag():
    no_restval = load_karpathy(FLICKR_JSON, FLICKR_IMAGES, "train", image_size=8,
                               restval_as_train=False)
    assert no_restval.ids == ["1000092795.jpg", "1000268201.jpg", "1000523639.jpg"]
    assert load_karpathy(FLICKR_JSON, FLICKR_IMAGES, "val", image_size=8).ids == ["10002456.jpg"]
    test = load_karpathy(FLICKR_JSON, FLICKR_IMAGES, "test", image_size=8)
    assert test.ids == ["1000366164.jpg"] and test.name == "flickr30k-test"
    assert test.captions[-1] == "Two men are cooking a meal."
    assert close_to(test.images[0], FLICKR_COLOURS["1000366164.jpg"])
    restval = load_karpathy(FLICKR_JSON, FLICKR_IMAGES, "restval", image_size=8)
    assert restval.ids == ["1000344755.jpg"]


def test_flickr_max_items_captions_per_item_and_tokens():
    split = load_karpathy(FLICKR_JSON, FLICKR_IMAGES, "train", image_size=8, max_items=2,
                          captions_per_item=3)
    assert split.ids == ["1000092795.jpg", "1000268201.jpg"]
    assert split.images.shape == (2, 8, 8, 3)
    assert split.caption_image.tolist() == [0, 0, 0, 1, 1, 1]
    assert split.captions[3] == "A child in a pink dress is climbing up a set of stairs in an " \
                                "entry way."
    tokens = load_karpathy(FLICKR_JSON, FLICKR_IMAGES, "train", image_size=8, max_items=1,
                           use_tokens=True)
    assert tokens.captions[0] == ("two young guys with shaggy hair look at their hands while "
                                  "hanging out in the yard")
    assert tokens.captions[1] == "two young white males are outside near many bushes"


def test_coco_filepath_restval_and_sixth_sentence_dropped():
    split = load_karpathy(COCO_JSON, COCO_IMAGES, "train", image_size=16)
    assert split.name == "coco-train"
    assert split.ids == ["COCO_train2014_000000000009.jpg", "COCO_val2014_000000522418.jpg"]
    assert len(split.captions) == 10  # the first image has 6 sentences: the 6th is dropped
    assert split.captions[4] == "A bunch of trays that have different food."
    assert split.captions[5] == "A woman wearing a net on her head cutting a cake."
    assert "Four plastic trays of food on a table, one with bread." not in split.captions
    assert close_to(split.images[0], (20, 120, 220))  # from train2014/
    assert close_to(split.images[1], (120, 220, 20))  # from val2014/
    test = load_karpathy(COCO_JSON, COCO_IMAGES, "test", image_size=16)
    assert test.ids == ["COCO_val2014_000000391895.jpg"]
    assert close_to(test.images[0], (220, 120, 20))
    six = load_karpathy(COCO_JSON, COCO_IMAGES, "train", image_size=8, captions_per_item=6,
                        restval_as_train=False)
    assert six.captions[-1] == "Four plastic trays of food on a table, one with bread."


def test_karpathy_split_works_with_train_pairs_and_protocol():
    split = load_karpathy(FLICKR_JSON, FLICKR_IMAGES, "train", image_size=16)
    pairs = TrainPairs(split, seed=0)
    assert len(pairs) == 4
    for i in range(len(pairs)):
        item = pairs[i]
        assert item["image"].shape == (3, 16, 16)
        assert split.caption_image[item["caption_index"]] == i
        assert split.captions[item["caption_index"]] == item["caption"]
    proto = RetrievalProtocol.from_split(split)
    assert proto.name == "flickr30k-train"
    assert proto.gallery_tensor().shape == (4, 3, 16, 16)
    assert proto.gt.tolist() == split.caption_image.tolist()
    assert proto.truth.sum() == 20 and proto.truth[np.arange(20), proto.gt].all()
    assert proto.restrict(np.array([0, 7])).queries[1] == split.captions[7]


def test_karpathy_fingerprint_stable_and_sensitive():
    a = load_karpathy(FLICKR_JSON, FLICKR_IMAGES, "train", image_size=16)
    b = load_karpathy(FLICKR_JSON, FLICKR_IMAGES, "train", image_size=16)
    assert a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 64
    assert a.fingerprint() != load_karpathy(FLICKR_JSON, FLICKR_IMAGES, "train",
                                            image_size=8).fingerprint()
    assert a.fingerprint() != load_karpathy(FLICKR_JSON, FLICKR_IMAGES, "train", image_size=16,
                                            use_tokens=True).fingerprint()


def test_karpathy_json_missing(tmp_path):
    path = tmp_path / "dataset_flickr30k.json"
    with pytest.raises(DatasetMissingError) as info:
        load_karpathy(path, FLICKR_IMAGES, "train")
    msg = str(info.value)
    assert str(path) in msg
    assert ("download caption_datasets.zip from "
            "https://cs.stanford.edu/people/karpathy/deepimagesent/ and unzip it") in msg
    assert isinstance(info.value, FileNotFoundError)


def test_karpathy_malformed_json(tmp_path):
    bad = tmp_path / "dataset_flickr30k.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"dataset_flickr30k\.json is not valid JSON"):
        load_karpathy(bad, FLICKR_IMAGES, "train")
    write_json(bad, {"dataset": "flickr30k", "pictures": []})
    with pytest.raises(ValueError, match="has no 'images' list"):
        load_karpathy(bad, FLICKR_IMAGES, "train")
    write_json(bad, [1, 2])
    with pytest.raises(ValueError, match="has no 'images' list"):
        load_karpathy(bad, FLICKR_IMAGES, "train")
    with pytest.raises(ValueError, match="is a folder"):
        load_karpathy(tmp_path, FLICKR_IMAGES, "train")


@pytest.mark.parametrize("key", ["filename", "split", "sentences"])
def test_karpathy_entry_without_field_names_index(tmp_path, key):
    data = json.loads(FLICKR_JSON.read_text(encoding="utf-8"))
    del data["images"][2][key]
    path = write_json(tmp_path / "dataset_flickr30k.json", data)
    with pytest.raises(ValueError, match=rf"images\[2\] has no '{key}' field"):
        load_karpathy(path, FLICKR_IMAGES, "train")


def test_karpathy_sentence_without_raw_or_tokens(tmp_path):
    data = json.loads(FLICKR_JSON.read_text(encoding="utf-8"))
    del data["images"][0]["sentences"][1]["raw"]
    del data["images"][0]["sentences"][3]["tokens"]
    path = write_json(tmp_path / "dataset_flickr30k.json", data)
    with pytest.raises(ValueError, match=r"images\[0\] \(1000092795\.jpg\) sentences\[1\] has "
                                         r"no 'raw'"):
        load_karpathy(path, FLICKR_IMAGES, "train")
    with pytest.raises(ValueError, match=r"sentences\[3\] has no 'tokens'"):
        load_karpathy(path, FLICKR_IMAGES, "train", use_tokens=True)


def test_karpathy_unknown_split_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown split 'testing'.*'train', 'val', 'test', "
                                         r"'restval'"):
        load_karpathy(FLICKR_JSON, FLICKR_IMAGES, "testing")
    assert KARPATHY_SPLITS == ("train", "val", "test", "restval")


def test_karpathy_bad_arguments():
    with pytest.raises(ValueError, match="max_items must be at least 1, got 0"):
        load_karpathy(FLICKR_JSON, FLICKR_IMAGES, "train", max_items=0)
    with pytest.raises(ValueError, match="captions_per_item must be at least 1"):
        load_karpathy(FLICKR_JSON, FLICKR_IMAGES, "train", captions_per_item=0)


def test_karpathy_image_folder_missing(tmp_path):
    with pytest.raises(DatasetMissingError, match="Flickr30K request form") as info:
        load_karpathy(FLICKR_JSON, tmp_path / "flickr30k-images", "train")
    assert "flickr30k image folder not found" in str(info.value)
    assert str(tmp_path / "flickr30k-images") in str(info.value)
    with pytest.raises(DatasetMissingError, match=r"cocodataset\.org") as info:
        load_karpathy(COCO_JSON, tmp_path / "coco", "test")
    assert str(tmp_path / "coco") in str(info.value)


def test_karpathy_image_files_missing_checked_before_loading(tmp_path, monkeypatch):
    root = copy_fixture(tmp_path, "flickr30k")
    (root / "images" / "1000268201.jpg").unlink()
    (root / "images" / "1000523639.jpg").unlink()
    loaded = []
    monkeypatch.setattr("fastslow_lib.data.karpathy.load_image",
                        lambda *a, **k: loaded.append(a) or np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DatasetMissingError, match=r"2 of the 4 image files of split 'train' "
                                                  r"\(first missing: 1000268201\.jpg\)") as info:
        load_karpathy(root / "dataset_flickr30k.json", root / "images", "train")
    assert str(root / "images" / "1000268201.jpg") in str(info.value)
    assert "Flickr30K request form" in str(info.value)
    assert loaded == []  # nothing loaded before the check
    # the other splits are complete and still load
    monkeypatch.undo()
    assert load_karpathy(root / "dataset_flickr30k.json", root / "images", "val",
                         image_size=8).ids == ["10002456.jpg"]


def test_coco_image_missing_names_filepath(tmp_path):
    root = copy_fixture(tmp_path, "coco")
    (root / "images" / "val2014" / "COCO_val2014_000000522418.jpg").unlink()
    with pytest.raises(DatasetMissingError, match=r"1 of the 2 image files") as info:
        load_karpathy(root / "dataset_coco.json", root / "images", "train")
    assert str(root / "images" / "val2014" / "COCO_val2014_000000522418.jpg") in str(info.value)
    assert "cocodataset.org" in str(info.value)


def test_karpathy_corrupt_image(tmp_path):
    root = copy_fixture(tmp_path, "flickr30k")
    (root / "images" / "10002456.jpg").write_bytes(b"\x00" * 50)
    with pytest.raises(OSError, match=r"cannot read image .*10002456\.jpg"):
        load_karpathy(root / "dataset_flickr30k.json", root / "images", "val")


def test_karpathy_too_few_captions_names_image(tmp_path):
    data = json.loads(FLICKR_JSON.read_text(encoding="utf-8"))
    data["images"][5]["sentences"] = data["images"][5]["sentences"][:4]
    path = write_json(tmp_path / "dataset_flickr30k.json", data)
    with pytest.raises(ValueError, match=r"image 1000523639\.jpg \(images\[5\]\) has 4 "
                                         r"sentences, fewer than captions_per_item=5"):
        load_karpathy(path, FLICKR_IMAGES, "train")
    assert len(load_karpathy(path, FLICKR_IMAGES, "train", image_size=8,
                             captions_per_item=4).captions) == 16
    with pytest.raises(ValueError, match=r"COCO_val2014_000000522418\.jpg .* has 5 sentences, "
                                         r"fewer than captions_per_item=6"):
        load_karpathy(COCO_JSON, COCO_IMAGES, "train", captions_per_item=6)


# --------------------------------------------------------------------------------------------
# VATEX
# --------------------------------------------------------------------------------------------


def test_frame_indices_uniform_and_repeating():
    assert frame_indices(10, 8).tolist() == [0, 1, 3, 4, 5, 6, 8, 9]
    assert frame_indices(3, 8).tolist() == [0, 0, 1, 1, 1, 1, 2, 2]
    assert frame_indices(6, 8).tolist() == [0, 1, 1, 2, 3, 4, 4, 5]
    assert frame_indices(3, 5).tolist() == [0, 0, 1, 2, 2]
    assert frame_indices(1, 4).tolist() == [0, 0, 0, 0]
    assert frame_indices(8, 8).tolist() == list(range(8))
    assert frame_indices(10, 1).tolist() == [0]
    assert frame_indices(10, 8).dtype == np.int64
    with pytest.raises(ValueError, match="frames must be at least 1"):
        frame_indices(10, 0)


def test_vatex_frames_shapes_captions_and_sampled_frames():
    split = load_vatex(VATEX_JSON, frames_dir=VATEX_FRAMES, image_size=8)
    assert split.name == "vatex_fixture"
    assert split.ids == VIDEO_IDS
    assert split.images.shape == (3, 8, 8, 8, 3) and split.images.dtype == np.uint8
    assert split.features is None
    assert len(split) == 3 and len(split.captions) == 30
    assert split.caption_image.tolist() == [0] * 10 + [1] * 10 + [2] * 10
    assert split.captions[0] == ("A man is playing an acoustic guitar while sitting on a couch "
                                 "in a living room.")
    assert split.captions[10] == "A woman is kneading dough on a wooden table in a kitchen."
    assert split.captions[29] == "A dog runs through a field chasing a toy."
    assert not any("男人" in c for c in split.captions)  # chCap ignored
    for v, n_frames in enumerate((10, 3, 6)):  # frame k of clip v: (60 v + 60, 20 k + 10, 128)
        for t, k in enumerate(frame_indices(n_frames, 8)):
            assert close_to(split.images[v, t], (60 * v + 60, 20 * k + 10, 128)), (v, t, k)


def test_vatex_frames_count_max_items_and_captions_per_item():
    split = load_vatex(VATEX_JSON, frames_dir=VATEX_FRAMES, frames=3, image_size=4,
                       captions_per_item=2, max_items=2)
    assert split.ids == VIDEO_IDS[:2]
    assert split.images.shape == (2, 3, 4, 4, 3)
    assert split.captions == [
        "A man is playing an acoustic guitar while sitting on a couch in a living room.",
        "A man sits on a sofa and strums a guitar.",
        "A woman is kneading dough on a wooden table in a kitchen.",
        "A woman prepares bread dough by hand.",
    ]
    assert split.caption_image.tolist() == [0, 0, 1, 1]
    # frames 0, 4/5 (-> 4 by halves-to-even), 9 of the 10-frame clip: green 10, 90, 190
    assert [int(split.images[0, t, 2, 2, 1]) for t in range(3)] == pytest.approx(
        [10, 90, 190], abs=TOL)


def test_vatex_frame_files_sorted_and_filtered(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for name in ("b.PNG", "a.jpg", "c.jpeg", "notes.txt", "d.npy"):
        (folder / name).write_bytes(b"")
    (folder / "sub.jpg").mkdir()
    assert [p.name for p in frame_files(folder)] == ["a.jpg", "b.PNG", "c.jpeg"]


def test_vatex_features_sampled_rows():
    split = load_vatex(VATEX_JSON, features_dir=VATEX_FEATURES)
    assert split.images is None
    assert split.features.shape == (3, 8, 16) and split.features.dtype == np.float32
    assert split.ids == VIDEO_IDS and split.name == "vatex_fixture"
    for v, rows in enumerate((12, 5, 16)):  # column 0 holds the row index, column 1 the clip
        assert split.features[v, :, 0].tolist() == frame_indices(rows, 8).tolist()
        assert (split.features[v, :, 1] == v).all()
    raw = np.load(VATEX_FEATURES / f"{VIDEO_IDS[0]}.npy")
    assert np.array_equal(split.features[0], raw[[0, 2, 3, 5, 6, 8, 9, 11]])
    assert len(split.captions) == 30 and split.truth.shape == (30, 3)
    proto = RetrievalProtocol.from_split(split)
    assert proto.gt.tolist() == [0] * 10 + [1] * 10 + [2] * 10
    assert proto.truth[np.arange(30), proto.gt].all() and proto.truth.sum() == 30


def test_vatex_frames_split_with_protocol_and_train_pairs():
    split = load_vatex(VATEX_JSON, frames_dir=VATEX_FRAMES, frames=4, image_size=8)
    proto = RetrievalProtocol.from_split(split)
    assert proto.gallery.shape == (3, 4, 8, 8, 3) and len(proto.queries) == 30
    pairs = TrainPairs(split, seed=1)
    for i in range(3):
        item = pairs[i]
        assert split.caption_image[item["caption_index"]] == i
        assert split.captions[item["caption_index"]] == item["caption"]


def test_vatex_fingerprint_stable_and_sensitive():
    a = load_vatex(VATEX_JSON, frames_dir=VATEX_FRAMES, frames=4, image_size=8)
    b = load_vatex(VATEX_JSON, frames_dir=VATEX_FRAMES, frames=4, image_size=8)
    assert a.fingerprint() == b.fingerprint()
    f1 = load_vatex(VATEX_JSON, features_dir=VATEX_FEATURES, frames=4)
    f2 = load_vatex(VATEX_JSON, features_dir=VATEX_FEATURES, frames=4)
    assert f1.fingerprint() == f2.fingerprint()
    assert len({a.fingerprint(), f1.fingerprint(),
                load_vatex(VATEX_JSON, features_dir=VATEX_FEATURES, frames=5).fingerprint()}) == 3


def test_vatex_json_missing(tmp_path):
    path = tmp_path / "vatex_validation_v1.0.json"
    with pytest.raises(DatasetMissingError) as info:
        load_vatex(path, frames_dir=VATEX_FRAMES)
    msg = str(info.value)
    assert str(path) in msg
    assert ("the VATEX captions (vatex_training_v1.0.json, vatex_validation_v1.0.json) from "
            "https://eric-xw.github.io/vatex-website/download.html") in msg


def test_vatex_malformed(tmp_path):
    path = tmp_path / "vatex.json"
    path.write_text("[{]", encoding="utf-8")
    with pytest.raises(ValueError, match=r"vatex\.json is not valid JSON"):
        load_vatex(path, frames_dir=VATEX_FRAMES)
    write_json(path, {"videoID": "x", "enCap": ["a"]})
    with pytest.raises(ValueError, match="holds a dict, expected a JSON list"):
        load_vatex(path, frames_dir=VATEX_FRAMES)
    data = json.loads(VATEX_JSON.read_text(encoding="utf-8"))
    for key in ("videoID", "enCap"):
        broken = json.loads(json.dumps(data))
        del broken[1][key]
        write_json(path, broken)
        with pytest.raises(ValueError, match=rf"entry \[1\] has no '{key}' field"):
            load_vatex(path, frames_dir=VATEX_FRAMES)
    for bad in ("one caption", ["ok", 3]):
        broken = json.loads(json.dumps(data))
        broken[2]["enCap"] = bad
        write_json(path, broken)
        with pytest.raises(ValueError, match=r"entry \[2\] \(0lh_UWF9ZP4_000031_000041\) "
                                             r"'enCap' must be a list of strings"):
            load_vatex(path, frames_dir=VATEX_FRAMES)


def test_vatex_exactly_one_source():
    with pytest.raises(ValueError, match=r"exactly one of frames_dir and features_dir "
                                         r"\(got neither\)"):
        load_vatex(VATEX_JSON)
    with pytest.raises(ValueError, match=r"\(got both\)"):
        load_vatex(VATEX_JSON, frames_dir=VATEX_FRAMES, features_dir=VATEX_FEATURES)


def test_vatex_too_few_captions_names_video():
    with pytest.raises(ValueError, match=r"video Ptf_2VRj-V0_000122_000132 has 10 English "
                                         r"captions, fewer than captions_per_item=11"):
        load_vatex(VATEX_JSON, features_dir=VATEX_FEATURES, captions_per_item=11)


def test_vatex_root_folders_missing(tmp_path):
    with pytest.raises(DatasetMissingError, match="VATEX frames folder") as info:
        load_vatex(VATEX_JSON, frames_dir=tmp_path / "frames")
    assert str(tmp_path / "frames") in str(info.value)
    with pytest.raises(DatasetMissingError, match="VATEX features folder") as info:
        load_vatex(VATEX_JSON, features_dir=tmp_path / "features")
    assert "I3D features" in str(info.value)


def test_vatex_video_folders_missing_checked_before_loading(tmp_path, monkeypatch):
    root = copy_fixture(tmp_path, "vatex")
    shutil.rmtree(root / "frames" / VIDEO_IDS[1])
    shutil.rmtree(root / "frames" / VIDEO_IDS[2])
    loaded = []
    monkeypatch.setattr("fastslow_lib.data.vatex.load_image",
                        lambda *a, **k: loaded.append(a) or np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DatasetMissingError, match=r"2 of the 3 video frame folders \(first "
                                                  r"missing: --DRV1xeAPk_000010_000020\)") as info:
        load_vatex(root / "vatex_fixture.json", frames_dir=root / "frames")
    assert str(root / "frames" / VIDEO_IDS[1]) in str(info.value)
    assert loaded == []
    monkeypatch.undo()
    assert load_vatex(root / "vatex_fixture.json", frames_dir=root / "frames", image_size=4,
                      max_items=1).ids == VIDEO_IDS[:1]


def test_vatex_feature_files_missing(tmp_path):
    root = copy_fixture(tmp_path, "vatex")
    (root / "features" / f"{VIDEO_IDS[2]}.npy").unlink()
    with pytest.raises(DatasetMissingError, match=r"1 of the 3 feature files \(first missing: "
                                                  r"0lh_UWF9ZP4_000031_000041\.npy\)") as info:
        load_vatex(root / "vatex_fixture.json", features_dir=root / "features")
    assert str(root / "features" / f"{VIDEO_IDS[2]}.npy") in str(info.value)


def test_vatex_video_folder_without_images(tmp_path):
    root = copy_fixture(tmp_path, "vatex")
    folder = root / "frames" / VIDEO_IDS[1]
    for p in folder.iterdir():
        p.unlink()
    (folder / "readme.txt").write_text("no frames here", encoding="utf-8")
    with pytest.raises(DatasetMissingError, match=r"frames of video --DRV1xeAPk_000010_000020 "
                                                  r"\(no \.jpg/\.jpeg/\.png files"):
        load_vatex(root / "vatex_fixture.json", frames_dir=root / "frames")


def test_vatex_feature_file_wrong_dimensions_or_size(tmp_path):
    root = copy_fixture(tmp_path, "vatex")
    bad = root / "features" / f"{VIDEO_IDS[1]}.npy"
    np.save(bad, np.zeros((2, 5, 16), np.float32))
    with pytest.raises(ValueError, match=r"--DRV1xeAPk_000010_000020\.npy has shape \(2, 5, 16\);"
                                         r" expected 2 dimensions \(T, D\)"):
        load_vatex(root / "vatex_fixture.json", features_dir=root / "features")
    np.save(bad, np.zeros(16, np.float32))
    with pytest.raises(ValueError, match="expected 2 dimensions"):
        load_vatex(root / "vatex_fixture.json", features_dir=root / "features")
    np.save(bad, np.zeros((5, 8), np.float32))
    with pytest.raises(ValueError, match=r"has D=8 but .* has D=16; every video must share"):
        load_vatex(root / "vatex_fixture.json", features_dir=root / "features")
    bad.write_bytes(b"not an npy file")
    with pytest.raises(OSError, match="cannot read feature file"):
        load_vatex(root / "vatex_fixture.json", features_dir=root / "features")
