"""The hf space: Hugging Face configs, and families of them to search (``--choices FILE``).

Tiny models only (hidden 16-48, vocabularies of 128-256), so the whole file stays fast."""
from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

import nni_zerocost as nz  # noqa: E402
from nni_zerocost import testing  # noqa: E402
from nni_zerocost.errors import BadInputError, InvalidArchitectureError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "model_type": "llama",
    "fixed": {"vocab_size": 256, "max_position_embeddings": 64, "tie_word_embeddings": True},
    "choices": {"hidden_size": [16, 32, 48], "num_hidden_layers": {"low": 1, "high": 3},
                "num_attention_heads": [2, 3, 4], "intermediate_size": {"low": 32, "high": 128, "step": 32}},
    "require": ["intermediate_size >= 2 * hidden_size"],
}
LLAMA = {"model_type": "llama", "vocab_size": 128, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64}


@pytest.fixture(scope="module")
def hf():
    return nz.get_space("hf")


@pytest.fixture(scope="module")
def tiny(hf):
    return hf.family(choices=TINY)


def _write(tmp_path, spec, name="family.yaml") -> str:
    import yaml

    path = tmp_path / name
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False))
    return str(path)


# -- the family file -----------------------------------------------------------------------------
def test_a_family_file_reads_as_yaml_or_json_in_its_own_order(hf, tmp_path):
    from_yaml = hf.family(choices=_write(tmp_path, TINY))
    from_json = hf.family(choices=_write(tmp_path, json.dumps(TINY), "family.json"))
    assert list(from_yaml.choices()) == ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"]
    assert from_yaml.choices() == from_json.choices()
    assert from_yaml.choices()["intermediate_size"] == [32, 64, 96, 128]
    assert from_yaml.space_options == {"choices": TINY}  # the content, not the path: it travels anywhere
    gpt2 = hf.family(choices={"model_type": "gpt2", "fixed": {"vocab_size": 128},
                              "choices": {"hidden_size": [16, 32], "num_attention_heads": [2, 4]}})
    assert list(gpt2.choices()) == ["n_embd", "n_head"]  # aliases resolve to the config's own fields


@pytest.mark.parametrize("change, where, says", [
    ({"choise": {}}, "choise", "did you mean 'choices'"),
    ({"model_type": "lama"}, "model_type", "did you mean 'llama'"),
    ({"choices": {"hiden_size": [16, 32]}}, "choices.hiden_size", "did you mean 'hidden_size'"),
    ({"choices": {"hidden_size": []}}, "choices.hidden_size", "an empty list"),
    ({"choices": {"hidden_size": [16, 16]}}, "choices.hidden_size", "twice"),
    ({"choices": {"hidden_size": {"low": 64, "high": 16}}}, "choices.hidden_size", "low <= high"),
    ({"choices": {"hidden_size": {"low": 16, "hi": 64}}}, "choices.hidden_size", "did you mean 'high'"),
    ({"choices": {"hidden_size": "big"}}, "choices.hidden_size", "a list of values or a range"),
    ({"choices": {"hidden_size": [16, "wide"]}}, "choices.hidden_size", "'wide'"),
    ({"fixed": {"vocab_size": "many"}}, "fixed.vocab_size", "expected int"),
    ({"fixed": {"hidden_size": 32}}, "choices.hidden_size", "already in fixed.hidden_size"),
    ({"require": ["intermediate_size >="]}, "require[0]", "not an expression"),
    ({"require": ["intermediate_size >= 2 * hiden_size"]}, "require[0]", "did you mean 'hidden_size'"),
    ({"require": ["__import__('os').system('true') == 0"]}, "require[0]", "calls only"),
    ({"require": ["hidden_size.real > 3"]}, "require[0]", "Attribute is not allowed"),
    ({"choices": {}}, "choices", "nothing to search"),
    ({"model_type": "qwen2", "per_layer": {"layer_types": ["full_attention"]}, "choices": {"hidden_size": [16]}},
     "per_layer", "layer count"),
    ({"require": ["hidden_size > 1000"]}, "", "no valid LlamaConfig found"),
])
def test_a_bad_family_file_is_one_line_naming_the_file_and_the_field(hf, tmp_path, change, where, says):
    spec = {**TINY, **change}
    path = _write(tmp_path, spec)
    with pytest.raises(BadInputError) as e:
        hf.family(choices=path)
    message = e.value.render(lambda f, *v: "--" + f.replace("_", "-"))
    assert e.value.field == "choices" and "\n" not in message, message
    assert message.startswith(f"--choices {path!r}: {where}"), message
    assert says in message, message


def test_unreadable_or_missing_family_files(hf, tmp_path):
    with pytest.raises(BadInputError, match="no such file"):
        hf.family(choices=str(tmp_path / "nope.yaml"))
    with pytest.raises(BadInputError, match="not valid YAML"):
        hf.family(choices=_write(tmp_path, "model_type: [llama\n"))
    with pytest.raises(BadInputError, match="a family is a mapping"):
        hf.family(choices=_write(tmp_path, "- llama\n"))


def test_the_family_option_is_checked_by_the_job_and_named_as_the_flag(tmp_path):
    with pytest.raises(BadInputError, match="takes no such option") as e:
        nz.check_job(nz.ScoringJob.of(["params"], "rnn", sample=1, choices=_write(tmp_path, TINY)))
    assert e.value.field == "choices"
    with pytest.raises(BadInputError, match="give <<choices>>|give choices="):
        nz.check_job(nz.ScoringJob.of(["params"], "hf", sample=1))


# -- members: every sample and every decode is valid ---------------------------------------------
def _holds(arch) -> bool:
    d = arch.to_dict()
    return d["intermediate_size"] >= 2 * d["hidden_size"] and d["hidden_size"] % d["num_attention_heads"] == 0


def test_samples_and_nni_decodes_are_always_valid_members(tiny):
    codec = tiny.codec()
    labels = codec.choices()
    rng = np.random.default_rng(0)
    for _ in range(200):  # draws of NNI's labels: a third break a relation, all decode to members
        draw = {label: values[int(rng.integers(len(values)))] for label, values in labels.items()}
        arch = codec.decode(draw)
        assert _holds(arch)
        assert codec.decode(codec.encode(arch)) == arch
        if codec.family.check(draw)[0] is not None:
            assert codec.encode(arch) == draw  # a valid draw is the member itself
    samples = [tiny.sample(np.random.default_rng(3)) for _ in range(2)]
    assert samples[0] == samples[1] and all(_holds(tiny.sample(rng)) for _ in range(50))
    with pytest.raises(InvalidArchitectureError, match="is not one of"):
        codec.decode({**codec.encode(samples[0]), "hidden_size": 17})
    with pytest.raises(InvalidArchitectureError, match="outside the family"):
        codec.encode({**samples[0].to_dict(), "hidden_size": 64})


def test_a_draw_with_no_member_nearby_is_a_clean_error(tiny, monkeypatch):
    from nni_zerocost.spaces.hf import family

    monkeypatch.setattr(family, "REPAIRS", 0)
    with pytest.raises(InvalidArchitectureError, match="not a multiple|does not hold"):
        tiny.codec().decode({"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 3,
                             "intermediate_size": 32})


def test_per_layer_fields_are_one_label_per_layer(hf):
    fam = hf.family(choices={
        "model_type": "qwen2", "choices": {"num_hidden_layers": [1, 2, 3]},
        "fixed": {"vocab_size": 128, "hidden_size": 16, "num_attention_heads": 2, "num_key_value_heads": 1,
                  "intermediate_size": 32, "use_sliding_window": True, "sliding_window": 8},
        "per_layer": {"layer_types": ["full_attention", "sliding_attention"]}})
    assert list(fam.choices()) == ["num_hidden_layers"] + [f"layer_{i}_layer_types" for i in range(3)]
    rng = np.random.default_rng(0)
    for _ in range(10):
        arch = fam.sample(rng)
        assert len(arch.to_dict()["layer_types"]) == arch.to_dict()["num_hidden_layers"]
        assert fam.codec().decode(fam.codec().encode(arch)) == arch


# -- architectures: any valid config, whatever the family ----------------------------------------
def test_round_trips_and_one_hash_per_model(hf, tiny):
    a = hf.parse(LLAMA)
    d = hf.to_dict(a)
    assert hf.parse(json.loads(json.dumps(d))) == a and hf.arch_hash(hf.parse(d)) == hf.arch_hash(a)
    assert hf.parse(json.dumps(LLAMA)) == a
    assert hf.parse({**LLAMA, "head_dim": 8, "use_cache": False}) == a  # the derived value; an inference flag
    assert tiny.parse(LLAMA) == a and tiny.arch_hash(a) == hf.arch_hash(a)  # outside the family: still parsed
    from transformers import AutoConfig

    assert hf.parse(AutoConfig.for_model(**LLAMA)) == a
    gpt2 = hf.parse({"model_type": "gpt2", "hidden_size": 32, "n_layer": 2, "n_head": 4, "vocab_size": 128})
    assert gpt2 == hf.parse({"model_type": "gpt2", "n_embd": 32, "num_hidden_layers": 2, "n_head": 4,
                             "vocab_size": 128})
    with pytest.raises(InvalidArchitectureError, match="did you mean 'hidden_size'"):
        hf.parse({**LLAMA, "hiden_size": 32})
    with pytest.raises(InvalidArchitectureError, match="not a multiple"):
        hf.parse({**LLAMA, "num_attention_heads": 3})
    with pytest.raises(InvalidArchitectureError, match="model_type"):
        hf.parse({"hidden_size": 32})


# -- sizes, counted on the meta device -------------------------------------------------------------
def _real(hf, arch):
    model = hf.build_model(arch)
    unique = dict(model.named_parameters())
    emb = {id(p): p for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    emb.update({id(p): p for p in model.get_output_embeddings().parameters()})
    total = sum(p.numel() for p in unique.values())
    return total, total - sum(p.numel() for p in emb.values())


@pytest.mark.parametrize("config", [
    LLAMA, {**LLAMA, "tie_word_embeddings": True},
    {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4, "vocab_size": 128, "n_positions": 64},
])
def test_sizes_on_the_meta_device_are_the_real_counts(hf, config):
    arch = hf.parse(config)
    assert (hf.param_count(arch), hf.nonembedding_param_count(arch)) == _real(hf, arch)
    scores = nz.score("hf", arch, ["params", "nonembedding_params"])
    assert (scores["params"].raw, scores["nonembedding_params"].raw) == (hf.param_count(arch),
                                                                         hf.nonembedding_param_count(arch))
    assert hf.active_param_count(arch) == hf.param_count(arch)  # dense
    d_attn, ctx = 32, 64  # heads x head dim; max_position_embeddings
    assert hf.flops(arch) == 2 * hf.nonembedding_param_count(arch) + 2 * 2 * ctx * d_attn  # Kaplan, 2 layers


def test_active_parameters_of_a_mixture_of_experts_by_hand(hf):
    E, k, H, I, L, V = 4, 2, 16, 32, 2, 128
    arch = hf.parse({"model_type": "mixtral", "vocab_size": V, "hidden_size": H, "intermediate_size": I,
                     "num_hidden_layers": L, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "num_local_experts": E, "num_experts_per_tok": k, "max_position_embeddings": 64})
    attention = H * H + 2 * H * (H // 2) + H * H  # q, k (2 kv heads of 4), v, o
    expert = 3 * H * I                            # gate, up, down
    layer = attention + E * H + E * expert + 2 * H  # router, experts, two norms
    total = 2 * V * H + L * layer + H             # untied embedding and head, final norm
    assert hf.param_count(arch) == total == _real(hf, arch)[0]
    assert hf.active_param_count(arch) == total - L * (E - k) * expert
    assert hf.flops(arch) == 2 * (total - 2 * V * H - L * (E - k) * expert) + 2 * L * 64 * H


def test_a_budget_skips_candidates_without_building_them(hf, tiny, monkeypatch):
    from nni_zerocost.spaces.hf import HFSpace

    def refuse(*a, **k):
        raise AssertionError("built a model over the budget")

    monkeypatch.setattr(HFSpace, "context", refuse)
    monkeypatch.setattr(HFSpace, "build_model", refuse)
    job = nz.ScoringJob.of(["synaptic_saliency"], "hf", choices=TINY, sample=6, max_params=100, store=None,
                           workers=1)
    records = list(nz.run(job))
    assert len(records) == 6 and all(r.status == "over_budget" for r in records)
    assert all(r.sizes["params"] > 100 and "flops" in r.sizes for r in records)


# -- front ends ----------------------------------------------------------------------------------------
def test_store_keys_do_not_depend_on_the_family(hf, tmp_path):
    arch = hf.parse({**TINY["fixed"], "model_type": "llama", "hidden_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "intermediate_size": 64})
    other = {**TINY, "choices": {**TINY["choices"], "hidden_size": [32, 64]}}
    plans = [nz.make_plan(nz.ScoringRequest.of(["params"], "hf", **opts))
             for opts in ({}, {"choices": TINY}, {"choices": _write(tmp_path, other)})]
    keys = {p.key(p.arch_key(arch), p.requests[0]) for p in plans}
    assert len(keys) == 1 and json.loads(keys.pop())[0] == "hf"
    from nni_zerocost.score_file import request_of

    assert request_of(plans[1]) == request_of(plans[2])  # a score file resumes under another family
    assert plans[2].scoring_request.space_options == {"choices": other}  # self-contained for workers
    job = nz.ScoringJob(plans[2].scoring_request)
    assert nz.ScoringJob.from_json(json.loads(json.dumps(job.to_json()))) == job


def test_the_nni_model_space_of_a_family(tiny):
    pytest.importorskip("nni")
    from nni.nas.space import SimplifiedModelSpace

    from nni_zerocost.nas import model_space
    from nni_zerocost.nas.spaces import space_class_of, space_of

    ms = model_space("hf", **tiny.space_options)
    executable = SimplifiedModelSpace.from_model(ms)
    cls, options = space_class_of(executable)
    assert options == tiny.space_options  # what NNI ships to a trial: the labels and the family's content
    candidate = executable.random(random_state=np.random.RandomState(0))
    assert candidate.sample.keys() == tiny.choices().keys()
    arch = cls.arch_from_sample(candidate.sample, **options)
    assert arch == tiny.codec().decode(candidate.sample) and _holds(arch)
    assert space_of(candidate) == ("hf", arch)  # what the evaluator scores: decoded, nothing built
    with torch.random.fork_rng():
        torch.manual_seed(0)
        frozen = ms.freeze(candidate.sample)
    assert space_of(frozen) == ("hf", arch) and sum(p.numel() for p in frozen.parameters()) == tiny.param_count(arch)


def test_cli_search_of_a_family_writes_its_report(tmp_path, monkeypatch, capsys):
    pytest.importorskip("nni")
    from nni_zerocost.cli import main

    monkeypatch.setenv("NNI_CONFIG_DIR", str(tmp_path / "nni-config"))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "results" / "hf"
    argv = ["search", "--space", "hf", "--choices", _write(tmp_path, TINY), "--max-params", "3e4", "--pareto",
            "--proxy", "synaptic_saliency", "--extra-proxy", "nonembedding_params", "--strategy", "ranking",
            "--budget", "4", "--out", str(out), "--store", str(tmp_path / "store.jsonl"), "--no-progress"]
    assert main(argv) == 0
    cands = [json.loads(line) for line in (out / "candidates.jsonl").read_text().splitlines()]
    assert len(cands) == 4 and all(c["params"] <= 3e4 and c["score"] is not None for c in cands)
    assert all(_holds(nz.get_space("hf").parse(c["arch"])) for c in cands)
    report = (out / "report.md").read_text()
    assert "Search report" in report and "Pareto" in report
    assert "Pareto front" in capsys.readouterr().out


def test_cli_score_samples_a_family_and_takes_model_args_for_hf_factories(hf, tmp_path, monkeypatch):
    from nni_zerocost.cli import main

    monkeypatch.chdir(tmp_path)
    family = _write(tmp_path, TINY)
    assert main(["score", "--space", "hf", "--choices", family, "--sample", "2", "--proxy", "params", "--out",
                 "s.jsonl", "--no-store", "--no-progress"]) == 0
    rows = [json.loads(line) for line in Path("s.jsonl").read_text().splitlines()]
    assert [r["scores"]["params"] for r in rows] == [hf.param_count(r["arch"]) for r in rows]
    configs = [LLAMA, {"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2, "vocab_size": 128}]
    Path("configs.jsonl").write_text("".join(json.dumps(c) + "\n" for c in configs))
    for given in ("configs.jsonl", json.dumps(configs)):  # a file of argument sets, or a JSON list of them
        assert main(["score", "--model", "nni_zerocost.spaces.hf:causal_lm", "--model-args", given, "--proxy",
                     "params", "--out", "m.jsonl", "--no-resume", "--no-store", "--no-progress"]) == 0
        rows = [json.loads(line) for line in Path("m.jsonl").read_text().splitlines()]
        assert [r["scores"]["params"] for r in rows] == [hf.param_count(c) for c in configs]
    from types import SimpleNamespace

    from nni_zerocost.cli.score import models_of

    with pytest.raises(BadInputError, match="JSON objects"):
        models_of(SimpleNamespace(model=["m:f"], model_arg=[], model_args="[1, 2]"))


# -- the conformance kit -----------------------------------------------------------------------------
def test_the_space_and_a_family_pass_the_conformance_kit(hf, tiny):
    testing.check_space("hf", proxies=False)  # tiny LLaMA and GPT-2 (Mamba where the context reads it)
    assert {a.model_type for a in hf.smoke_architectures()} >= {"llama", "gpt2"}
    testing.check_space(tiny, proxies=False)  # sampling, the NNI codec, NASLib's generic form
    testing.check_proxy("params", "hf")
    testing.check_proxy("nonembedding_params", "hf")


# -- examples ------------------------------------------------------------------------------------------
def test_the_llama_family_example_is_under_100m_parameters(hf):
    import yaml

    path = REPO / "examples" / "llama_family.yaml"
    fam, spec = hf.family(choices=str(path)), yaml.safe_load(path.read_text())
    widest = {f: (max(v) if isinstance(v, list) else v["high"]) for f, v in spec["choices"].items()}
    biggest = {**spec["fixed"], "model_type": "llama", **widest, "num_attention_heads": 4}
    assert fam.param_count(biggest) < 1e8 < 1.01 * fam.param_count(biggest)
    assert fam.codec().encode(biggest)  # a member
    rng = np.random.default_rng(0)
    assert all(fam.param_count(fam.sample(rng)) < 1e8 for _ in range(20))


@pytest.mark.parametrize("script, args", [
    ("hf_family_search.py", ["--budget", "3", "--max-params", "3e4"]),
    ("nni_hf_space.py", ["--trials", "3", "--max-params", "3e4"]),
])
def test_examples_run_on_a_tiny_family(tmp_path, monkeypatch, capsys, script, args):
    pytest.importorskip("nni")
    monkeypatch.setenv("NNI_CONFIG_DIR", str(tmp_path / "nni-config"))
    monkeypatch.setenv("NNI_ZEROCOST_STORE", str(tmp_path / "store.jsonl"))
    monkeypatch.chdir(tmp_path)
    extra = ["--out", str(tmp_path / "out")] if script == "hf_family_search.py" else \
        ["--experiment-dir", str(tmp_path / "nni")]
    monkeypatch.setattr(sys, "argv", [script, "--choices", _write(tmp_path, TINY), *args, *extra])
    runpy.run_path(str(REPO / "examples" / script), run_name="__main__")
    out = capsys.readouterr().out
    assert "llama: hidden_size" in out
    if script == "hf_family_search.py":
        assert (tmp_path / "out" / "report.md").is_file()


def test_layers_and_cost_inputs_come_from_the_config():
    sp = nz.get_space("hf")
    arch = sp.smoke_architecture()
    assert sp.layer_count(arch) == arch.config().num_hidden_layers
    assert sp.cost_inputs(arch) == {"vocab_size": arch.config().vocab_size}
    gpt2 = sp.parse({"model_type": "gpt2", "n_layer": 3, "n_embd": 32, "n_head": 2, "vocab_size": 300})
    assert sp.layer_count(gpt2) == 3 and sp.cost_inputs(gpt2) == {"vocab_size": 300}
