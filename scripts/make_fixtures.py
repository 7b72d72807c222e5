#!/usr/bin/env python3
"""Write the tiny real-data fixtures under ``data/fixtures/`` (seeded, reproducible).

The fixtures use the exact on-disk formats of the real datasets, so that the loaders of
:mod:`fastslow_lib.data.karpathy` and :mod:`fastslow_lib.data.vatex` are tested without them:

* ``flickr30k/dataset_flickr30k.json`` (Karpathy split file: 6 images, 3 train, 1 restval,
  1 val, 1 test, 5 sentences each) and ``flickr30k/images/*.jpg``;
* ``coco/dataset_coco.json`` (4 images with ``filepath`` ``train2014``/``val2014``, one with
  6 sentences) and ``coco/images/{train2014,val2014}/*.jpg``;
* ``vatex/vatex_fixture.json`` (3 clips, 10 ``enCap`` and a few ``chCap`` each),
  ``vatex/frames/<videoID>/000001.jpg ...`` (10, 3 and 6 frames of 32x24) and
  ``vatex/features/<videoID>.npy`` (float32 ``(T, 16)``, T = 12, 5, 16).

Every image is one known colour where the loader's centre crop keeps it and black where the crop
cuts (bands on the long side), so tests can check both the pixels and the crop. Frame ``k`` of
clip ``v`` has green ``20 k + 10`` and red ``60 v + 60``; row ``t`` of a feature file has
``t`` in column 0 and the clip index in column 1 (the other columns are seeded noise), so tests
can check which frames or rows were sampled. Taught in notebooks/06_demo_and_scale.ipynb.

    python scripts/make_fixtures.py [--out data/fixtures]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

SEED = 0

FLICKR = [  # (filename, split, (width, height), colour, sentences)
    ("1000092795.jpg", "train", (40, 30), (200, 40, 40), [
        " Two young guys with shaggy hair look at their hands while hanging out in the yard. ",
        "Two young, White males are outside near many bushes.",
        "Two men in green shirts are standing in a yard.",
        "A man in a blue shirt standing in a garden.",
        "Two friends enjoy time spent together.",
    ]),
    ("10002456.jpg", "val", (30, 40), (40, 200, 40), [
        "Several men in hard hats are operating a giant pulley system.",
        "Workers look down from up above on a piece of equipment.",
        "Two men working on a machine wearing hard hats.",
        "Four men on top of a tall structure.",
        "Three men on a large rig.",
    ]),
    ("1000268201.jpg", "train", (40, 30), (40, 40, 200), [
        "A child in a pink dress is climbing up a set of stairs in an entry way.",
        "A little girl in a pink dress going into a wooden cabin.",
        "A little girl climbing the stairs to her playhouse.",
        "A little girl climbing into a wooden playhouse.",
        "A girl going into a wooden building.",
    ]),
    ("1000344755.jpg", "restval", (30, 40), (200, 200, 40), [
        "Someone in a blue shirt and hat is standing on stair and leaning against a window.",
        "A man in a blue shirt is standing on a ladder cleaning windows.",
        "A man on a ladder cleans the window of a tall building.",
        "Man in blue shirt and jeans on ladder cleaning windows.",
        "A man on a ladder cleans a window.",
    ]),
    ("1000366164.jpg", "test", (40, 30), (200, 40, 200), [
        "Two men, one in a gray shirt, one in a black shirt, standing near a stove.",
        "Two guy cooking and joking around with the camera.",
        "Two men in a kitchen cooking food on a stove.",
        "Two men are at the stove preparing food.",
        "Two men are cooking a meal.",
    ]),
    ("1000523639.jpg", "train", (30, 40), (40, 200, 200), [
        "Two people in the photo are playing the guitar and the other is poking at him.",
        "A man in green holds a guitar while the other man observes his shirt.",
        "A man is fixing the guitar players costume.",
        "A guy stitching up another man's coat.",
        "The two boys playing guitar.",
    ]),
]

COCO = [  # (filename, filepath, split, cocoid, (width, height), colour, sentences)
    ("COCO_val2014_000000391895.jpg", "val2014", "test", 391895, (48, 36), (220, 120, 20), [
        "A man with a red helmet on a small moped on a dirt road. ",
        "Man riding a motor bike on a dirt road on the countryside.",
        "A man riding on the back of a motorcycle.",
        "A dirt path with a young person on a motor bike rests to the foreground of a verdant "
        "area with a bridge and a background of cloud-wreathed mountains.",
        "A man in a red shirt and a red hat is on a motorcycle on a hill side.",
    ]),
    ("COCO_train2014_000000000009.jpg", "train2014", "train", 9, (36, 48), (20, 120, 220), [
        "Closeup of bins of food that include broccoli and bread.",
        "A meal is presented in brightly colored plastic trays.",
        "there are containers filled with different kinds of foods",
        "Colorful dishes holding meat, vegetables, fruit, and bread.",
        "A bunch of trays that have different food.",
        "Four plastic trays of food on a table, one with bread.",
    ]),
    ("COCO_val2014_000000522418.jpg", "val2014", "restval", 522418, (48, 36), (120, 220, 20), [
        "A woman wearing a net on her head cutting a cake. ",
        "A woman cutting a large white sheet cake.",
        "A woman wearing a hair net cutting a large sheet cake.",
        "there is a woman that is cutting a white cake",
        "A woman marking a cake with the back of a chef's knife. ",
    ]),
    ("COCO_val2014_000000184613.jpg", "val2014", "val", 184613, (36, 48), (120, 20, 220), [
        "A child holding a flowered umbrella and petting a yak.",
        "A young man holding an umbrella next to a herd of cattle.",
        "a young boy barefoot holding an umbrella touching the horn of a cow",
        "A young boy with an umbrella who is touching the horn of a cow.",
        "A boy holding an umbrella while standing next to livestock.",
    ]),
]

VATEX = [  # (videoID, frame count, feature rows, English captions, Chinese captions)
    ("Ptf_2VRj-V0_000122_000132", 10, 12, [
        "A man is playing an acoustic guitar while sitting on a couch in a living room.",
        "A man sits on a sofa and strums a guitar.",
        "A young man plays a song on his guitar at home.",
        "A person is playing the guitar indoors.",
        "A man practices chords on an acoustic guitar.",
        "A guitarist sits on a couch and plays a tune.",
        "A man holding a guitar plays music in his house.",
        "Someone is strumming a guitar while seated.",
        "A man is sitting and playing a guitar slowly.",
        "A man plays guitar on a brown couch.",
    ], ["一个男人坐在沙发上弹吉他。", "一个年轻人在家里弹奏吉他。"]),
    ("--DRV1xeAPk_000010_000020", 3, 5, [
        "A woman is kneading dough on a wooden table in a kitchen.",
        "A woman prepares bread dough by hand.",
        "A person presses and folds dough on a counter.",
        "A lady is working dough with her hands.",
        "A woman kneads a ball of dough for bread.",
        "Someone is making bread by kneading the dough.",
        "A cook shapes dough on a floured surface.",
        "A woman rolls and pushes dough on a table.",
        "A woman is making dough in her kitchen.",
        "A person kneads dough before baking.",
    ], ["一个女人在厨房的木桌上揉面团。", "一个人在案板上揉面。", "一位女士用手揉面团。"]),
    ("0lh_UWF9ZP4_000031_000041", 6, 16, [
        "A dog runs across a grassy field to catch a frisbee.",
        "A dog chases a frisbee in a park.",
        "A brown dog leaps to catch a flying disc.",
        "A dog is playing fetch with a frisbee outdoors.",
        "A dog runs and jumps to grab a frisbee.",
        "A man throws a frisbee and his dog catches it.",
        "A dog catches a frisbee in mid air.",
        "A dog sprints over the grass after a disc.",
        "A playful dog retrieves a frisbee on a lawn.",
        "A dog runs through a field chasing a toy.",
    ], ["一只狗在草地上奔跑去接飞盘。", "一只狗在公园里追飞盘。"]),
]

FEATURE_DIM = 16
FRAME_SIZE = (32, 24)  # (width, height)


def tokens(raw: str) -> list[str]:
    """Karpathy-style tokens: lower-cased words, punctuation dropped."""
    return re.findall(r"[a-z0-9]+", raw.lower())


def banded_image(size: tuple[int, int], colour: tuple[int, int, int]) -> Image.Image:
    """``colour`` in the centred square a centre crop keeps, black in the bands it cuts."""
    w, h = size
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    arr[top:top + side, left:left + side] = colour
    return Image.fromarray(arr)


def save_jpeg(image: Image.Image, path: Path) -> None:
    """Save as a high-quality JPEG without chroma subsampling (colours stay close)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=95, subsampling=0)


def karpathy_entry(i: int, first_sentid: int, filename: str, split: str,
                   sentences: list[str]) -> dict:
    """One ``images`` entry of a Karpathy split file, its sentences numbered from
    ``first_sentid``."""
    sentids = list(range(first_sentid, first_sentid + len(sentences)))
    return {
        "filename": filename,
        "imgid": i,
        "sentids": sentids,
        "split": split,
        "sentences": [{"tokens": tokens(s), "raw": s, "imgid": i, "sentid": sid}
                      for s, sid in zip(sentences, sentids, strict=True)],
    }


def write_json(obj: object, path: Path) -> None:
    """UTF-8 JSON (Chinese captions kept as characters, as in the VATEX files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def make_flickr(out: Path) -> None:
    images, sentid = [], 0
    for i, (filename, split, size, colour, sentences) in enumerate(FLICKR):
        save_jpeg(banded_image(size, colour), out / "images" / filename)
        images.append(karpathy_entry(i, sentid, filename, split, sentences))
        sentid += len(sentences)
    write_json({"images": images, "dataset": "flickr30k"}, out / "dataset_flickr30k.json")


def make_coco(out: Path) -> None:
    images, sentid = [], 0
    for i, (filename, filepath, split, cocoid, size, colour, sentences) in enumerate(COCO):
        save_jpeg(banded_image(size, colour), out / "images" / filepath / filename)
        entry = {"filepath": filepath, **karpathy_entry(i, sentid, filename, split, sentences),
                 "cocoid": cocoid}
        images.append(entry)
        sentid += len(sentences)
    write_json({"images": images, "dataset": "coco"}, out / "dataset_coco.json")


def make_vatex(out: Path, rng: np.random.Generator) -> None:
    records = []
    for v, (video_id, n_frames, n_rows, en, ch) in enumerate(VATEX):
        for k in range(n_frames):
            colour = (60 * v + 60, 20 * k + 10, 128)
            frame = Image.new("RGB", FRAME_SIZE, colour)
            save_jpeg(frame, out / "frames" / video_id / f"{k + 1:06d}.jpg")
        feats = rng.standard_normal((n_rows, FEATURE_DIM)).astype(np.float32)
        feats[:, 0] = np.arange(n_rows)
        feats[:, 1] = v
        (out / "features").mkdir(parents=True, exist_ok=True)
        np.save(out / "features" / f"{video_id}.npy", feats)
        records.append({"videoID": video_id, "enCap": en, "chCap": ch})
    write_json(records, out / "vatex_fixture.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--out", type=Path, default=root / "data" / "fixtures")
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    for name, make in (("flickr30k", make_flickr), ("coco", make_coco),
                       ("vatex", lambda o: make_vatex(o, rng))):
        folder = args.out / name
        if folder.exists():
            shutil.rmtree(folder)  # only the fixture folders this script writes
        make(folder)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote fixtures to {args.out} ({total / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
