"""Tests for fastslow_lib.data.tokenizer: vocabulary, encode/decode layouts, errors, save/load."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from fastslow_lib.data.tokenizer import (
    BOS_ID,
    CLS_ID,
    DEFAULT_MAX_LENGTH,
    EOS_ID,
    MASK_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    build_tokenizer,
    decode,
    encode,
    lengths,
    load_tokenizer,
    save_tokenizer,
    unknown_words,
)

CAPTIONS = [
    "from left to right: a small red circle, a large blue square and a green triangle.",
    "a red circle is above a blue square; there is also a yellow triangle in the bottom left",
    "a large green square is below a small yellow circle.",
    "there is a blue triangle in the top right",
]

# Tiny corpus whose vocabulary is easy to write by hand: red x2, circle x1, square x1.
TINY = ["red circle", "red square"]
TINY_VOCAB = {
    "[PAD]": 0,
    "[UNK]": 1,
    "[BOS]": 2,
    "[EOS]": 3,
    "[CLS]": 4,
    "[MASK]": 5,
    "red": 6,
    "circle": 7,
    "square": 8,
}
RED, CIRCLE, SQUARE = 6, 7, 8


@pytest.fixture(scope="module")
def tok() -> PreTrainedTokenizerFast:
    return build_tokenizer(CAPTIONS)


@pytest.fixture(scope="module")
def tiny() -> PreTrainedTokenizerFast:
    return build_tokenizer(TINY)


# --------------------------------------------------------------------------- vocabulary


def test_special_token_constants_have_the_documented_ids() -> None:
    assert SPECIAL_TOKENS == ("[PAD]", "[UNK]", "[BOS]", "[EOS]", "[CLS]", "[MASK]")
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID, CLS_ID, MASK_ID) == (0, 1, 2, 3, 4, 5)


def test_built_tokenizer_special_tokens_and_settings(tok: PreTrainedTokenizerFast) -> None:
    assert isinstance(tok, PreTrainedTokenizerFast)
    assert tok.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == [0, 1, 2, 3, 4, 5]
    assert tok.pad_token_id == PAD_ID
    assert tok.unk_token_id == UNK_ID
    assert tok.bos_token_id == BOS_ID
    assert tok.eos_token_id == EOS_ID
    assert tok.cls_token_id == CLS_ID
    assert tok.mask_token_id == MASK_ID
    assert tok.model_max_length == DEFAULT_MAX_LENGTH == 64
    assert tok.padding_side == "right"


def test_tiny_vocabulary_is_exactly_the_hand_written_one(tiny: PreTrainedTokenizerFast) -> None:
    assert tiny.get_vocab() == TINY_VOCAB
    assert len(tiny) == len(TINY_VOCAB)


def test_vocabulary_order_is_frequency_then_alphabetical() -> None:
    # counts: a=3, b=2, ","=1, c=1 -> ties broken alphabetically ("," < "c")
    tok = build_tokenizer(["b a", "c a ,", "b a"])
    words = sorted(tok.get_vocab().items(), key=lambda item: item[1])[len(SPECIAL_TOKENS) :]
    assert words == [("a", 6), ("b", 7), (",", 8), ("c", 9)]


def test_two_builds_give_the_same_vocabulary_whatever_the_caption_order() -> None:
    first = build_tokenizer(CAPTIONS)
    second = build_tokenizer(list(CAPTIONS))
    shuffled = list(CAPTIONS)
    random.Random(0).shuffle(shuffled)
    third = build_tokenizer(iter(shuffled))  # any iterable, e.g. a generator, is accepted
    assert first.get_vocab() == second.get_vocab() == third.get_vocab()


def test_punctuation_is_split_and_text_is_normalised(tok: PreTrainedTokenizerFast) -> None:
    vocab = tok.get_vocab()
    for token in ["square", ",", ".", ":", ";", "circle"]:
        assert token in vocab
    assert "square," not in vocab
    ids = encode(tok, ["  A Small  RED Circle,  "], 8, add_bos=False, add_eos=False)["input_ids"]
    expected = tok.convert_tokens_to_ids(["a", "small", "red", "circle", ","])
    assert ids[0, :5].tolist() == expected


def test_accents_are_stripped() -> None:
    tok = build_tokenizer(["café square"])
    assert "cafe" in tok.get_vocab()
    assert "café" not in tok.get_vocab()
    assert unknown_words(tok, "CAFÉ Square") == []


def test_min_freq_drops_rare_words_which_become_unk() -> None:
    tok = build_tokenizer(TINY, min_freq=2)
    assert sorted(tok.get_vocab(), key=tok.get_vocab().get) == [*SPECIAL_TOKENS, "red"]
    ids = encode(tok, ["red circle"], 4)["input_ids"]
    assert ids.tolist() == [[BOS_ID, RED, UNK_ID, EOS_ID]]


# --------------------------------------------------------------------------- encode


def test_encode_two_word_caption_layout_exactly(tiny: PreTrainedTokenizerFast) -> None:
    batch = encode(tiny, ["red circle"], 6)
    assert batch["input_ids"].tolist() == [[BOS_ID, RED, CIRCLE, EOS_ID, PAD_ID, PAD_ID]]
    assert batch["input_ids"].tolist() == [[2, 6, 7, 3, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0]]


def test_encode_reverse_layout_exactly(tiny: PreTrainedTokenizerFast) -> None:
    batch = encode(tiny, ["red circle"], 6, reverse=True)
    assert batch["input_ids"].tolist() == [[2, 7, 6, 3, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0]]


def test_encode_without_bos_or_eos(tiny: PreTrainedTokenizerFast) -> None:
    assert encode(tiny, ["red circle"], 4, add_bos=False)["input_ids"].tolist() == [
        [RED, CIRCLE, EOS_ID, PAD_ID]
    ]
    assert encode(tiny, ["red circle"], 4, add_eos=False)["input_ids"].tolist() == [
        [BOS_ID, RED, CIRCLE, PAD_ID]
    ]
    plain = encode(tiny, ["red circle"], 2, add_bos=False, add_eos=False, reverse=True)
    assert plain["input_ids"].tolist() == [[CIRCLE, RED]]


def test_encode_batch_padding_and_attention_mask(tiny: PreTrainedTokenizerFast) -> None:
    batch = encode(tiny, ["red", "red circle square", "square"], 7)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.dtype == torch.long and mask.dtype == torch.long
    assert ids.shape == mask.shape == (3, 7)
    assert ids.tolist() == [
        [2, RED, 3, 0, 0, 0, 0],
        [2, RED, CIRCLE, SQUARE, 3, 0, 0],
        [2, SQUARE, 3, 0, 0, 0, 0],
    ]
    assert mask.tolist() == [
        [1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 0, 0],
        [1, 1, 1, 0, 0, 0, 0],
    ]
    assert torch.equal(mask, (ids != PAD_ID).long())


def test_reverse_reverses_only_the_word_tokens(tok: PreTrainedTokenizerFast) -> None:
    forward = encode(tok, CAPTIONS, 32)
    backward = encode(tok, CAPTIONS, 32, reverse=True)
    assert torch.equal(forward["attention_mask"], backward["attention_mask"])
    for row_f, row_b, n_words in zip(
        forward["input_ids"], backward["input_ids"], lengths(tok, CAPTIONS), strict=True
    ):
        assert row_f[0] == row_b[0] == BOS_ID
        assert row_f[n_words + 1] == row_b[n_words + 1] == EOS_ID
        assert row_b[1 : n_words + 1].tolist() == row_f[1 : n_words + 1].tolist()[::-1]
        assert row_b[1 : n_words + 1].tolist() != row_f[1 : n_words + 1].tolist()


def test_lengths_count_word_tokens_without_specials(tok: PreTrainedTokenizerFast) -> None:
    # "a red circle, a blue square." -> a red circle , a blue square .
    assert lengths(tok, ["a red circle, a blue square.", "red"]) == [8, 1]
    mask = encode(tok, CAPTIONS, 40)["attention_mask"]
    assert mask.sum(dim=1).tolist() == [n + 2 for n in lengths(tok, CAPTIONS)]


# --------------------------------------------------------------------------- decode


@pytest.mark.parametrize("reverse", [False, True])
def test_round_trip_reproduces_the_captions(tok: PreTrainedTokenizerFast, reverse: bool) -> None:
    batch = encode(tok, CAPTIONS, 40, reverse=reverse)
    decoded = [decode(tok, row, reverse=reverse) for row in batch["input_ids"]]
    assert decoded == CAPTIONS


def test_reversed_ids_decoded_without_reverse_read_backwards(tiny: PreTrainedTokenizerFast) -> None:
    row = encode(tiny, ["red circle"], 5, reverse=True)["input_ids"][0]
    assert decode(tiny, row) == "circle red"
    assert decode(tiny, row, reverse=True) == "red circle"


def test_round_trip_normalises_case_spacing_and_punctuation() -> None:
    caption = "It's  LEFT-right: a (big) square , then a circle ."
    tok = build_tokenizer([caption])
    row = encode(tok, [caption], 30)["input_ids"][0]
    assert decode(tok, row) == "it's left-right: a (big) square, then a circle."
    assert decode(tok, encode(tok, [caption], 30, reverse=True)["input_ids"][0], reverse=True) == (
        "it's left-right: a (big) square, then a circle."
    )


def test_decode_accepts_lists_stops_at_eos_and_keeps_unk(tiny: PreTrainedTokenizerFast) -> None:
    assert decode(tiny, [BOS_ID, RED, CIRCLE, EOS_ID, SQUARE, PAD_ID]) == "red circle"
    assert decode(tiny, [CLS_ID, RED, MASK_ID, SQUARE]) == "red square"
    assert decode(tiny, [BOS_ID, RED, UNK_ID, EOS_ID]) == "red [UNK]"
    assert decode(tiny, torch.tensor([BOS_ID, EOS_ID])) == ""


# --------------------------------------------------------------------------- unknown words


def test_unknown_words_are_listed_in_order_and_encode_to_unk(tok: PreTrainedTokenizerFast) -> None:
    text = "a Purple circle, a hexagon and a purple square"
    assert unknown_words(tok, text) == ["purple", "hexagon", "purple"]
    assert unknown_words(tok, CAPTIONS[0]) == []
    ids = encode(tok, [text], 20, add_bos=False, add_eos=False)["input_ids"][0].tolist()
    n_words = lengths(tok, [text])[0]
    unk_positions = [i for i, token_id in enumerate(ids[:n_words]) if token_id == UNK_ID]
    assert unk_positions == [1, 5, 8]


# --------------------------------------------------------------------------- too long


def test_too_long_caption_raises_with_index_length_and_max_len(
    tiny: PreTrainedTokenizerFast,
) -> None:
    with pytest.raises(ValueError, match=r"caption 1 is 5 tokens .*max_len=4.*truncate=True"):
        encode(tiny, ["red", "red circle square"], 4)


def test_truncation_keeps_bos_and_eos_and_the_first_words(tiny: PreTrainedTokenizerFast) -> None:
    batch = encode(tiny, ["red circle square", "red"], 4, truncate=True)
    assert batch["input_ids"].tolist() == [[2, RED, CIRCLE, 3], [2, RED, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]


def test_reverse_truncation_keeps_the_same_words_reversed(tiny: PreTrainedTokenizerFast) -> None:
    batch = encode(tiny, ["red circle square"], 4, truncate=True, reverse=True)
    assert batch["input_ids"].tolist() == [[2, CIRCLE, RED, 3]]


# --------------------------------------------------------------------------- bad input


def test_empty_or_whitespace_caption_raises_naming_its_index(tiny: PreTrainedTokenizerFast) -> None:
    with pytest.raises(ValueError, match="caption 1 is empty"):
        encode(tiny, ["red", ""], 5)
    with pytest.raises(ValueError, match="caption 2 is empty"):
        encode(tiny, ["red", "square", " \t\n"], 5)
    with pytest.raises(ValueError, match="caption 0 is empty"):
        lengths(tiny, [" "])


def test_caption_with_no_token_after_normalisation_raises(tiny: PreTrainedTokenizerFast) -> None:
    with pytest.raises(ValueError, match="caption 1 has no tokens after normalisation"):
        encode(tiny, ["red", "\u0301"], 5)  # a lone combining accent is stripped away


def test_empty_list_raises(tiny: PreTrainedTokenizerFast) -> None:
    with pytest.raises(ValueError, match="texts is empty"):
        encode(tiny, [], 5)
    with pytest.raises(ValueError, match="texts is empty"):
        lengths(tiny, [])


def test_non_string_item_raises_type_error(tiny: PreTrainedTokenizerFast) -> None:
    with pytest.raises(TypeError, match="caption 1 must be a str, got int"):
        encode(tiny, ["red", 3], 5)  # type: ignore[list-item]
    with pytest.raises(TypeError, match="caption 0 must be a str, got NoneType"):
        lengths(tiny, [None])  # type: ignore[list-item]


def test_single_string_or_non_list_raises_type_error(tiny: PreTrainedTokenizerFast) -> None:
    with pytest.raises(TypeError, match="got a single str; wrap it in a list"):
        encode(tiny, "red circle", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="texts must be a list of strings, got set"):
        encode(tiny, {"red"}, 5)  # type: ignore[arg-type]


def test_special_token_text_in_a_caption_raises(tiny: PreTrainedTokenizerFast) -> None:
    with pytest.raises(ValueError, match=re.escape("caption 0 contains the special token '[PAD]'")):
        encode(tiny, ["red [PAD] circle"], 6)
    with pytest.raises(ValueError, match="special token"):
        build_tokenizer(["red [MASK] circle"])


@pytest.mark.parametrize(
    ("max_len", "kwargs", "error", "message"),
    [
        (2, {}, ValueError, "max_len must be at least 3, got 2"),
        (0, {"add_bos": False, "add_eos": False}, ValueError, "max_len must be at least 1, got 0"),
        (5.0, {}, TypeError, "max_len must be an int, got float"),
        (True, {}, TypeError, "max_len must be an int, got bool"),
        (5, {"reverse": 1}, TypeError, "reverse must be a bool, got int"),
        (5, {"truncate": "yes"}, TypeError, "truncate must be a bool, got str"),
        (5, {"add_bos": None}, TypeError, "add_bos must be a bool, got NoneType"),
    ],
)
def test_bad_encode_arguments_raise(
    tiny: PreTrainedTokenizerFast, max_len: object, kwargs: dict, error: type, message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        encode(tiny, ["red"], max_len, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ids", "error", "message"),
    [
        (torch.tensor([[2, 6, 3]]), ValueError, "ids must be 1-D, got a tensor of shape (1, 3)"),
        (torch.tensor([2.0, 6.0]), TypeError, "ids must be an integer tensor"),
        ([2, 99], ValueError, "ids[1]=99 is outside the vocabulary [0, 9)"),
        ([2, -1], ValueError, "ids[1]=-1 is outside the vocabulary"),
        ([2, "red"], TypeError, "ids[1] must be an int, got str"),
        ("red", TypeError, "ids must be a 1-D list or tensor of ints, got str"),
        (7, TypeError, "ids must be a 1-D list or tensor of ints, got int"),
    ],
)
def test_bad_decode_ids_raise(
    tiny: PreTrainedTokenizerFast, ids: object, error: type, message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        decode(tiny, ids)  # type: ignore[arg-type]


def test_decode_reverse_must_be_bool(tiny: PreTrainedTokenizerFast) -> None:
    with pytest.raises(TypeError, match="reverse must be a bool, got str"):
        decode(tiny, [2, 6, 3], reverse="yes")  # type: ignore[arg-type]


def test_unknown_words_rejects_non_string(tiny: PreTrainedTokenizerFast) -> None:
    with pytest.raises(TypeError, match="text must be a str, got list"):
        unknown_words(tiny, ["red"])  # type: ignore[arg-type]


def test_helpers_reject_something_that_is_not_a_fast_tokenizer() -> None:
    with pytest.raises(TypeError, match="tokenizer must be a transformers.PreTrainedTokenizerFast"):
        encode("not a tokenizer", ["red"], 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="build_tokenizer or load_tokenizer"):
        decode(None, [2, 3])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("captions", "kwargs", "error", "message"),
    [
        ("red circle", {}, TypeError, "captions must be an iterable of strings, got a single str"),
        (5, {}, TypeError, "captions must be an iterable of strings, got int"),
        ([], {}, ValueError, "captions is empty"),
        (["red", b"circle"], {}, TypeError, "caption 1 must be a str, got bytes"),
        (["red", "   "], {}, ValueError, "caption 1 is empty or whitespace only"),
        (TINY, {"min_freq": 0}, ValueError, "min_freq must be at least 1, got 0"),
        (TINY, {"min_freq": 1.5}, TypeError, "min_freq must be an int, got float"),
        (TINY, {"min_freq": 3}, ValueError, "no word occurs at least min_freq=3 times"),
    ],
)
def test_bad_build_arguments_raise(
    captions: object, kwargs: dict, error: type, message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        build_tokenizer(captions, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- save / load


def test_save_load_round_trip_gives_identical_ids(
    tok: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    directory = save_tokenizer(tok, tmp_path / "tok")
    assert (directory / "tokenizer.json").is_file()
    loaded = load_tokenizer(str(directory))
    assert isinstance(loaded, PreTrainedTokenizerFast)
    assert loaded.get_vocab() == tok.get_vocab()
    assert loaded.model_max_length == 64
    assert loaded.padding_side == "right"
    assert loaded.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == [0, 1, 2, 3, 4, 5]
    assert loaded.mask_token_id == MASK_ID and loaded.cls_token_id == CLS_ID
    texts = [*CAPTIONS, "a purple hexagon"]
    for reverse in (False, True):
        before = encode(tok, texts, 40, reverse=reverse)
        after = encode(loaded, texts, 40, reverse=reverse)
        assert torch.equal(before["input_ids"], after["input_ids"])
        assert torch.equal(before["attention_mask"], after["attention_mask"])
    assert unknown_words(loaded, "a purple hexagon") == ["purple", "hexagon"]


def test_load_missing_directory_says_which_path_and_how_to_build(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as info:
        load_tokenizer(missing)
    message = str(info.value)
    assert str(missing) in message
    assert "does not exist" in message
    assert "build_tokenizer" in message
    assert "world's data cache" in message


def test_load_directory_without_tokenizer_json_raises(tmp_path: Path) -> None:
    (tmp_path / "other.txt").write_text("not a tokenizer")
    with pytest.raises(FileNotFoundError) as info:
        load_tokenizer(tmp_path)
    assert f"no tokenizer.json in {str(tmp_path)!r}" in str(info.value)
    assert "build_tokenizer" in str(info.value)


def test_save_and_load_reject_bad_directory_types(tiny: PreTrainedTokenizerFast) -> None:
    with pytest.raises(TypeError, match="directory must be a str or Path, got int"):
        save_tokenizer(tiny, 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="directory must be a str or Path, got NoneType"):
        load_tokenizer(None)  # type: ignore[arg-type]
