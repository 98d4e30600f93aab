import pytest
import torch

from nni_zerocost.data import Corpus, batchify, corpus_batch, zipf_batch
from nni_zerocost.errors import DataError


def test_corpus_vocabulary_by_first_appearance_train_valid_test(tmp_path):
    (tmp_path / "ptb.train.txt").write_text("b a\na c\n")
    (tmp_path / "ptb.valid.txt").write_text("d\n")
    (tmp_path / "ptb.test.txt").write_text("c e b\n")
    c = Corpus.from_path(tmp_path)
    assert c.word2idx == {"b": 0, "a": 1, "<eos>": 2, "c": 3, "d": 4, "e": 5}
    assert c.ids["test"].tolist() == [3, 5, 0, 2]


def test_batchify_columns_like_awd_lstm():
    data = batchify(torch.arange(10), 3)
    assert data.tolist() == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]


def test_paper_batch_from_ptb(ptb_dir):
    b = corpus_batch(ptb_dir, 50, 70)
    assert b.tokens.shape == (70, 50)
    assert b.vocab_size == 10_000
    c = Corpus.from_path(ptb_dir)
    assert len(c) == 10_000
    assert [c.ids[s].numel() for s in ("train", "valid", "test")] == [929_589, 73_760, 82_430]
    # column j starts at token j * (82430 // 50) of the test stream
    assert b.tokens[0, 1].item() == c.ids["test"][82_430 // 50].item()


def test_single_file_and_errors(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text(" ".join(["w%d" % (i % 7) for i in range(500)]) + "\n")
    b = corpus_batch(f, batch_size=5, seq_len=20)
    assert b.tokens.shape == (20, 5)
    with pytest.raises(DataError, match="no such corpus"):
        corpus_batch(tmp_path / "missing")
    with pytest.raises(DataError, match="no test split"):
        corpus_batch(tmp_path)
    with pytest.raises(DataError, match="rows"):
        corpus_batch(f, batch_size=5, seq_len=1000)


def test_zipf_default_is_deterministic_and_zipfian():
    a, b = zipf_batch(seed=0), zipf_batch(seed=0)
    assert torch.equal(a.tokens, b.tokens) and a.fingerprint == b.fingerprint
    assert zipf_batch(seed=1).fingerprint != a.fingerprint
    big = zipf_batch(batch_size=500, seq_len=200, seed=0).tokens.flatten()
    counts = torch.bincount(big, minlength=10_000).float()
    # rank-1 word about twice as frequent as rank-2
    assert 1.6 < (counts[0] / counts[1]).item() < 2.4
