"""Word-level tokenizer for the captions of the procedural world.

Taught in notebooks/00_data.ipynb

The captions are lower-case English over a vocabulary of about sixty words plus a few
punctuation marks, so a WORD-level tokenizer is enough: every word (and every punctuation
mark) is one token. Both models of the course share it:

* the Fast dual encoder's text transformer reads ``[BOS] w1 ... wn [EOS]``;
* the Slow captioning model has a FORWARD decoder that reads ``[BOS] w1 ... wn [EOS]`` and a
  BACKWARD decoder that reads ``[BOS] wn ... w1 [EOS]`` (``encode(..., reverse=True)``). Both
  directions use the same BOS/EOS convention, so one decoder class serves both.

The tokenizer itself is a ``tokenizers.Tokenizer`` (``WordLevel`` model, a normaliser that
applies NFKC, strips accents and lower-cases, a pre-tokeniser that splits on whitespace and
isolates every punctuation mark) wrapped as a ``transformers.PreTrainedTokenizerFast`` so it
can be saved and loaded with ``save_pretrained`` / ``from_pretrained``. It adds no special
tokens by itself: the helpers below (``encode``, ``decode``) place BOS/EOS/PAD explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from fastslow_lib.config.checks import check_bool, check_int

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
BOS_TOKEN = "[BOS]"
EOS_TOKEN = "[EOS]"
CLS_TOKEN = "[CLS]"
MASK_TOKEN = "[MASK]"

#: The special tokens, in id order: SPECIAL_TOKENS[i] has id i in every vocabulary we build.
SPECIAL_TOKENS: tuple[str, ...] = (
    PAD_TOKEN,
    UNK_TOKEN,
    BOS_TOKEN,
    EOS_TOKEN,
    CLS_TOKEN,
    MASK_TOKEN,
)
PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
CLS_ID = 4
MASK_ID = 5

#: Default ``model_max_length`` of a built tokenizer (captions are about 10-25 tokens).
DEFAULT_MAX_LENGTH = 64

#: File written by ``save_pretrained`` that holds the whole ``tokenizers`` pipeline.
TOKENIZER_FILE = "tokenizer.json"

# How ``decode`` glues punctuation back: no space before closing marks, none after opening ones.
_NO_SPACE_BEFORE = frozenset(".,;:!?)]}'-/")
_NO_SPACE_AFTER = frozenset("([{'-/")

# Special ids that ``decode`` drops. UNK is kept (shown as "[UNK]") because it stands for a word.
_DROPPED_BY_DECODE = frozenset({PAD_ID, BOS_ID, EOS_ID, CLS_ID, MASK_ID})


# --------------------------------------------------------------------------- validation


def check_texts(texts: object, name: str = "texts") -> list[str]:
    """Return ``texts`` as a list after checking it is a non-empty list of usable captions.

    The one check of caption and query text, run once by each public entry point that takes
    texts (:func:`encode`, :func:`lengths`, the scorers, :func:`fastslow_lib.rerank.rerank`);
    the functions they call trust it. Raises TypeError for a single string, a non-sequence or a
    non-string item, and ValueError for an empty list, an empty/whitespace-only caption or a
    caption that contains the literal text of a special token (which the tokenizer would
    otherwise turn into that special id).
    """
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of strings, not one string: got a single str; "
                        "wrap it in a list")
    if not isinstance(texts, Sequence | np.ndarray):
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError(f"no {name} given: {name} is empty: give at least one caption")
    for index, text in enumerate(texts):
        _check_caption(text, index)
    return list(texts)


def _check_caption(text: object, index: int) -> None:
    """Check one caption (see :func:`check_texts`); ``index`` is used in the error messages."""
    if not isinstance(text, str):
        raise TypeError(f"caption {index} must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"caption {index} is empty or whitespace only")
    for special in SPECIAL_TOKENS:
        if special in text:
            raise ValueError(
                f"caption {index} contains the special token {special!r}; "
                "captions must be plain text"
            )


def _check_tokenizer(tokenizer: object) -> PreTrainedTokenizerFast:
    """Check that ``tokenizer`` is a fast tokenizer whose special tokens have our ids."""
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise TypeError(
            f"tokenizer must be a transformers.PreTrainedTokenizerFast, got "
            f"{type(tokenizer).__name__}; make one with build_tokenizer or load_tokenizer"
        )
    ids = tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    if ids != list(range(len(SPECIAL_TOKENS))):
        raise ValueError(
            f"the tokenizer does not map the special tokens {list(SPECIAL_TOKENS)} to ids 0..5 "
            f"(got {ids}); make it with build_tokenizer"
        )
    return tokenizer


def sequence_ids(tokenizer: object) -> tuple[int, int, int]:
    """``(start, end, pad)`` token ids that :func:`encode` wraps and pads captions with.

    The course's own tokenizer (:func:`build_tokenizer`) gives ``(BOS_ID, EOS_ID, PAD_ID)``. A
    pretrained WordPiece tokenizer of a BERT-style encoder (MiniLM, loaded with
    :func:`load_pretrained_tokenizer`) has no BOS/EOS: it gives its ``[CLS]``, ``[SEP]`` and
    ``[PAD]`` ids, the sequence it was pretrained on (``[CLS] w1 ... wn [SEP]``). Any other
    tokenizer raises ValueError naming what it lacks.
    """
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise TypeError(
            f"tokenizer must be a transformers.PreTrainedTokenizerFast, got "
            f"{type(tokenizer).__name__}; make one with build_tokenizer or load_tokenizer (or "
            "load_pretrained_tokenizer)"
        )
    if tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == list(range(len(SPECIAL_TOKENS))):
        return BOS_ID, EOS_ID, PAD_ID
    ids = {"cls": tokenizer.cls_token_id, "sep": tokenizer.sep_token_id,
           "pad": tokenizer.pad_token_id}
    missing = [name for name, value in ids.items() if value is None]
    if missing:
        raise ValueError(
            f"the tokenizer is neither the course's tokenizer (special tokens "
            f"{list(SPECIAL_TOKENS)} at ids 0..5) nor a BERT-style one: it has no "
            f"{', '.join(missing)} token"
        )
    return ids["cls"], ids["sep"], ids["pad"]


# --------------------------------------------------------------------------- building


def _empty_tokenizer() -> Tokenizer:
    """An untrained WordLevel pipeline: NFKC + strip accents + lower-case, split words/punct."""
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(behavior="isolated")]
    )
    return tokenizer


def _wrap(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    """Wrap a trained ``tokenizers.Tokenizer`` as a transformers fast tokenizer."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        cls_token=CLS_TOKEN,
        mask_token=MASK_TOKEN,
        model_max_length=DEFAULT_MAX_LENGTH,
        padding_side="right",
    )


def build_tokenizer(captions: Iterable[str], min_freq: int = 1) -> PreTrainedTokenizerFast:
    """Train a word-level tokenizer on ``captions``.

    The vocabulary is: the six special tokens (ids 0-5, see ``SPECIAL_TOKENS``), then every
    word or punctuation mark seen at least ``min_freq`` times, by descending frequency and,
    for equal frequencies, alphabetically. ``WordLevelTrainer`` orders words exactly that way
    (count, then word: a total order), so the same captions, in any order, give the same ids;
    the tests pin this down. Rarer words encode to ``UNK_ID``.

    Raises TypeError if ``captions`` is a single string or holds a non-string, ValueError if
    it is empty, holds a blank caption, or no word reaches ``min_freq``.
    """
    if isinstance(captions, str):
        raise TypeError("captions must be an iterable of strings, got a single str")
    if not isinstance(captions, Iterable):
        raise TypeError(f"captions must be an iterable of strings, got {type(captions).__name__}")
    texts = check_texts(list(captions), name="captions")
    min_freq = check_int(min_freq, "min_freq", minimum=1)

    tokenizer = _empty_tokenizer()
    trainer = trainers.WordLevelTrainer(
        vocab_size=2**31 - 1,  # never cut the vocabulary: min_freq is the only filter
        min_frequency=min_freq,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    if tokenizer.get_vocab_size() == len(SPECIAL_TOKENS):
        raise ValueError(f"no word occurs at least min_freq={min_freq} times in the captions")
    return _wrap(tokenizer)


# --------------------------------------------------------------------------- save / load


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, directory: str | Path) -> Path:
    """Save ``tokenizer`` into ``directory`` (created if needed) and return the directory."""
    tokenizer = _check_tokenizer(tokenizer)
    if not isinstance(directory, str | Path):
        raise TypeError(f"directory must be a str or Path, got {type(directory).__name__}")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(path))
    return path


def load_tokenizer(directory: str | Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved by ``save_tokenizer`` from a local ``directory`` (no download).

    Raises FileNotFoundError, naming the path, if the directory or its ``tokenizer.json`` is
    missing.
    """
    if not isinstance(directory, str | Path):
        raise TypeError(f"directory must be a str or Path, got {type(directory).__name__}")
    path = Path(directory)
    how = (
        "build one with fastslow_lib.data.tokenizer.build_tokenizer(captions) and save it with "
        "save_tokenizer(tokenizer, directory), or rebuild the world's data cache, which saves it"
    )
    if not path.is_dir():
        raise FileNotFoundError(f"tokenizer directory {str(path)!r} does not exist; {how}")
    if not (path / TOKENIZER_FILE).is_file():
        raise FileNotFoundError(f"no {TOKENIZER_FILE} in {str(path)!r}; {how}")
    tok = PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
    return _check_tokenizer(tok)


def load_pretrained_tokenizer(directory: str | Path) -> PreTrainedTokenizerFast:
    """A pretrained text encoder's own tokenizer from a local folder (no download).

    For the real-data path: a pretrained text tower (e.g. MiniLM, see
    :func:`fastslow_lib.fast.pretrained.minilm_dir`) must read the word pieces it was trained on,
    not the course's word-level vocabulary. The folder needs a ``tokenizer.json`` (a fast
    tokenizer); :func:`encode` then writes ``[CLS] ... [SEP]`` rows with it. Raises
    FileNotFoundError naming the folder when it or its ``tokenizer.json`` is missing, and
    ValueError when the tokenizer has no ``[CLS]``/``[SEP]``/``[PAD]``.
    """
    if not isinstance(directory, str | Path):
        raise TypeError(f"directory must be a str or Path, got {type(directory).__name__}")
    path = Path(directory)
    how = "point it at a pretrained model's folder (the one its save_pretrained wrote)"
    if not path.is_dir():
        raise FileNotFoundError(f"tokenizer directory {str(path)!r} does not exist; {how}")
    if not (path / TOKENIZER_FILE).is_file():
        raise FileNotFoundError(f"no {TOKENIZER_FILE} in {str(path)!r}; {how}")
    tok = PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
    sequence_ids(tok)
    # A saved tokenizer.json may pad or truncate every encoding (MiniLM's pads to 128); encode
    # places the special tokens and the padding itself and never cuts a caption silently.
    tok.backend_tokenizer.no_padding()
    tok.backend_tokenizer.no_truncation()
    return tok


# --------------------------------------------------------------------------- encoding


def _word_ids(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> list[list[int]]:
    """Token ids of each text, without any special token; raise if a text has no token."""
    backend = tokenizer.backend_tokenizer
    if backend.truncation is not None:
        raise ValueError(f"the tokenizer truncates every text to "
                         f"{backend.truncation['max_length']} tokens; load it with "
                         "load_pretrained_tokenizer, which turns that off")
    encodings = backend.encode_batch(texts, add_special_tokens=False)
    ids = [[i for i, m in zip(e.ids, e.attention_mask, strict=True) if m] for e in encodings]
    for index, row in enumerate(ids):
        if not row:
            raise ValueError(f"caption {index} has no tokens after normalisation")
    return ids


def _fit(words: list[int], index: int, room: int, max_len: int, truncate: bool) -> list[int]:
    """Return ``words`` cut to ``room`` tokens if allowed, else raise when they do not fit."""
    if len(words) <= room:
        return words
    if truncate:
        return words[:room]
    needed = len(words) + (max_len - room)
    raise ValueError(
        f"caption {index} is {needed} tokens long with its special tokens, more than "
        f"max_len={max_len}; raise max_len or pass truncate=True"
    )


def encode(
    tokenizer: PreTrainedTokenizerFast,
    texts: list[str],
    max_len: int,
    *,
    add_bos: bool = True,
    add_eos: bool = True,
    reverse: bool = False,
    truncate: bool = False,
) -> dict[str, torch.Tensor]:
    """Encode captions into a right-padded batch.

    Each row is ``[BOS] w1 ... wn [EOS] [PAD] ...`` (BOS/EOS only if ``add_bos``/``add_eos``).
    With ``reverse=True`` only the word tokens are reversed, ``[BOS] wn ... w1 [EOS]``, for the
    right-to-left decoder. Unknown words become ``UNK_ID``. A pretrained BERT-style tokenizer
    (MiniLM's WordPiece, the real-data path) is accepted too: its rows are
    ``[CLS] pieces ... [SEP] [PAD] ...`` (see :func:`sequence_ids`).

    A caption longer than ``max_len`` (special tokens included) raises ValueError, unless
    ``truncate=True``: then its LAST word tokens are dropped (BOS and EOS are kept), and with
    ``reverse=True`` the cut happens before reversing, so both directions see the same words.

    Returns ``input_ids`` and ``attention_mask``, both long tensors of shape
    ``(len(texts), max_len)``; the mask is 1 on real tokens (specials included), 0 on padding.
    """
    sequence_ids(tokenizer)
    texts = check_texts(texts)
    flags = {"add_bos": add_bos, "add_eos": add_eos, "reverse": reverse, "truncate": truncate}
    for name, value in flags.items():
        check_bool(value, name)
    max_len = check_int(max_len, "max_len", minimum=int(add_bos) + int(add_eos) + 1)
    return encode_unchecked(tokenizer, texts, max_len, add_bos=add_bos, add_eos=add_eos,
                            reverse=reverse, truncate=truncate)


def encode_unchecked(
    tokenizer: PreTrainedTokenizerFast,
    texts: Sequence[str],
    max_len: int,
    *,
    add_bos: bool = True,
    add_eos: bool = True,
    reverse: bool = False,
    truncate: bool = False,
) -> dict[str, torch.Tensor]:
    """:func:`encode` for callers that have checked their input once already.

    The inner half of :func:`encode`: no check of ``tokenizer``, ``texts`` (see
    :func:`check_texts`) or the flags; a public entry point (``encode``, the scorers,
    :func:`fastslow_lib.rerank.rerank`) checks them once and the per-batch work calls this. A
    caption too long for ``max_len`` still raises ValueError (that depends on the tokens).
    """
    start, end, pad = sequence_ids(tokenizer)
    room = max_len - int(add_bos) - int(add_eos)

    input_ids = torch.full((len(texts), max_len), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(texts), max_len), dtype=torch.long)
    for index, words in enumerate(_word_ids(tokenizer, list(texts))):
        words = _fit(words, index, room, max_len, truncate)
        if reverse:
            words = words[::-1]
        row = ([start] if add_bos else []) + words + ([end] if add_eos else [])
        input_ids[index, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention_mask[index, : len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def lengths(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> list[int]:
    """Number of word tokens (punctuation included, special tokens excluded) of each text."""
    sequence_ids(tokenizer)
    texts = check_texts(texts)
    return [len(words) for words in _word_ids(tokenizer, texts)]


def unknown_words(tokenizer: PreTrainedTokenizerFast, text: str) -> list[str]:
    """The words of ``text`` (normalised and split like the tokenizer does) not in the vocabulary.

    They are returned in order of appearance (repeats included); they are the tokens that
    ``encode`` turns into ``UNK_ID``. Handy for a search box: "unknown words: ...".
    """
    tokenizer = _check_tokenizer(tokenizer)
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    backend = tokenizer.backend_tokenizer
    normalised = backend.normalizer.normalize_str(text)
    words = [word for word, _span in backend.pre_tokenizer.pre_tokenize_str(normalised)]
    vocab = tokenizer.get_vocab()
    return [word for word in words if word not in vocab]


# --------------------------------------------------------------------------- decoding


def _as_id_list(ids: Sequence[int] | torch.Tensor, vocab_size: int) -> list[int]:
    """Check that ``ids`` is a 1-D list/tensor of valid token ids and return it as a list."""
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 1:
            raise ValueError(f"ids must be 1-D, got a tensor of shape {tuple(ids.shape)}")
        if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
            raise TypeError(f"ids must be an integer tensor, got dtype {ids.dtype}")
        ids = ids.tolist()
    if isinstance(ids, str) or not isinstance(ids, Sequence):
        raise TypeError(f"ids must be a 1-D list or tensor of ints, got {type(ids).__name__}")
    for position, token_id in enumerate(ids):
        check_int(token_id, f"ids[{position}]", minimum=None)
        if not 0 <= token_id < vocab_size:
            raise ValueError(
                f"ids[{position}]={token_id} is outside the vocabulary [0, {vocab_size})"
            )
    return list(ids)


def _join(tokens: list[str]) -> str:
    """Join tokens with spaces, gluing punctuation: ``["a", "square", ","]`` -> "a square,"."""
    text = ""
    for token in tokens:
        glued = not text or token in _NO_SPACE_BEFORE or text[-1] in _NO_SPACE_AFTER
        text += token if glued else " " + token
    return text


def decode(
    tokenizer: PreTrainedTokenizerFast, ids: Sequence[int] | torch.Tensor, *, reverse: bool = False
) -> str:
    """Turn one row of ids back into text.

    Reading stops at the first ``[EOS]`` (what a decoder generates after it is ignored);
    PAD, BOS, CLS and MASK are dropped, ``[UNK]`` is kept as the text "[UNK]". With
    ``reverse=True`` the word order is flipped back, undoing ``encode(..., reverse=True)``.
    Words are joined by spaces with punctuation glued to its neighbour, so
    ``decode(tokenizer, encode(tokenizer, [c], n)["input_ids"][0])`` gives back the normalised
    caption.
    """
    tokenizer = _check_tokenizer(tokenizer)
    check_bool(reverse, "reverse")
    id_list = _as_id_list(ids, len(tokenizer))
    if EOS_ID in id_list:
        id_list = id_list[: id_list.index(EOS_ID)]
    words = [token_id for token_id in id_list if token_id not in _DROPPED_BY_DECODE]
    if reverse:
        words = words[::-1]
    return _join(tokenizer.convert_ids_to_tokens(words))
