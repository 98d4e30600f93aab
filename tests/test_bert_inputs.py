"""Token batches for the BERT space: the embedded default and the tokenizer hook."""
import numpy as np
import pytest
import torch

from nni_zerocost.spaces import get_space
from nni_zerocost.spaces.bert import BertBatch, batch_from_texts, zipf_bert_batch
from nni_zerocost.spaces.bert.inputs import CLS_ID, MASK_ID, SEP_ID


def test_default_batch_shape_specials_and_padding():
    b = get_space("bert").default_batch()
    assert b.shape == (128, 128)
    lengths = b.attention_mask.sum(1)
    assert int(lengths.min()) == 12 and int(lengths.max()) == 128
    assert 35 <= float(lengths.float().median()) <= 45
    rows = torch.arange(128)
    assert (b.input_ids[:, 0] == CLS_ID).all()
    assert (b.input_ids[rows, lengths - 1] == SEP_ID).all()
    assert (b.input_ids[b.attention_mask == 0] == 0).all()
    assert (b.token_type_ids[b.attention_mask == 0] == 0).all()
    pairs = (b.token_type_ids.sum(1) > 0)
    assert 50 <= int(pairs.sum()) <= 64  # every other row is a sentence pair
    words = b.input_ids[(b.attention_mask == 1) & (b.input_ids > SEP_ID)]
    assert int(words.min()) >= 1996
    # Zipf: "the" (rank 1) is the most frequent id, and about 1 / H(28526) ~ 9% of the words
    counts = torch.bincount(words)
    assert int(counts.argmax()) == 1996 and 0.06 < counts[1996] / len(words) < 0.12


def test_default_batch_is_deterministic_and_seeds_keep_the_mask():
    a, b, c = zipf_bert_batch(seed=0), zipf_bert_batch(seed=0), zipf_bert_batch(seed=1)
    assert torch.equal(a.input_ids, b.input_ids) and a.fingerprint == b.fingerprint
    assert not torch.equal(a.input_ids, c.input_ids) and a.fingerprint != c.fingerprint
    assert torch.equal(a.attention_mask, c.attention_mask)


@pytest.mark.parametrize("kwargs, words", [
    (dict(input_ids=torch.full((2, 4), 30522)), "vocabulary"),
    (dict(attention_mask=torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]])), "no real token"),
    (dict(attention_mask=torch.ones(2, 5, dtype=torch.long)), "same shape"),
    (dict(token_type_ids=torch.full((2, 4), 2)), "0 or 1"),
    (dict(attention_mask=torch.full((2, 4), 2)), "only 0 and 1"),
    (dict(input_ids=torch.zeros(4, dtype=torch.long)), "2-D"),
])
def test_bad_batches_are_rejected_with_the_reason(kwargs, words):
    base = dict(input_ids=torch.full((2, 4), 2000), attention_mask=torch.ones(2, 4, dtype=torch.long),
                token_type_ids=torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=words):
        BertBatch(**{**base, **kwargs})


class FakeTokenizer:
    """Stands in for a Hugging Face tokenizer: same call signature, numpy output, no download."""

    pad_token_id = 0
    mask_token_id = MASK_ID
    name_or_path = "fake-wordpiece"

    def __init__(self):
        self.calls = []

    def __call__(self, texts, pairs=None, *, padding, truncation, max_length, return_tensors):
        self.calls.append(dict(padding=padding, truncation=truncation, max_length=max_length, return_tensors=return_tensors))
        ids, types = [], []
        for i, text in enumerate(texts):
            a = [2000 + len(w) for w in text.split()]
            row, tt = [CLS_ID] + a + [SEP_ID], [0] * (len(a) + 2)
            if pairs is not None:
                b = [3000 + len(w) for w in pairs[i].split()]
                row, tt = row + b + [SEP_ID], tt + [1] * (len(b) + 1)
            row, tt = row[:max_length], tt[:max_length]
            ids.append(row + [0] * (max_length - len(row)))
            types.append(tt + [0] * (max_length - len(tt)))
        ids = np.array(ids)
        return {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64), "token_type_ids": np.array(types)}


def test_batch_from_texts_uses_the_tokenizer_and_keeps_masks():
    tok = FakeTokenizer()
    b = batch_from_texts(["a tiny sentence", "another one here too"], tok, max_length=8)
    assert tok.calls == [dict(padding="max_length", truncation=True, max_length=8, return_tensors="np")]
    assert b.shape == (2, 8) and b.attention_mask.sum(1).tolist() == [5, 6]
    assert b.input_ids[0, :5].tolist() == [CLS_ID, 2001, 2004, 2008, SEP_ID]
    assert b.source == "texts:fake-wordpiece:2" and b.mask_token_id == MASK_ID
    pairs = batch_from_texts([("first part", "second")], tok, max_length=8)
    assert pairs.token_type_ids[0].tolist() == [0, 0, 0, 0, 1, 1, 0, 0]
    # and the batch scores like any other
    ctx = get_space("bert").context({"hidden_size": 128, "nas_config": {"encoder_layers": [
        {"operation_type": "SA", "operation_parameter": "SDP", "num_operation_heads": 2,
         "feed_forward_dimension": 512, "num_feed_forward": 1}] * 2}}, b)
    assert ctx.forward_stats().attention_keys[0].shape == (2,)


def test_batch_from_texts_rejects_empty_input_and_foreign_vocabularies():
    with pytest.raises(ValueError, match="empty"):
        batch_from_texts([], FakeTokenizer())

    class Gpt2Like(FakeTokenizer):
        def __call__(self, *a, **k):
            out = super().__call__(*a, **k)
            out["input_ids"] = out["input_ids"] + 40000 * (out["input_ids"] > 0)
            return out

    with pytest.raises(ValueError, match="vocabulary"):
        batch_from_texts(["some words"], Gpt2Like())
