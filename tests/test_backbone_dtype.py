"""Backbone weights in the dtype the profile states, and mixed precision (tiny random BERT, CPU, seconds)."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import AutoModel

from scoring_lab.models import per_task
from scoring_lab.models.backbone import TINY_RANDOM, load_backbone
from scoring_lab.models.cache import ArtifactCache
from scoring_lab.data.synthetic import generate_benchmark
from scoring_lab.profiles import ProfileError, TrainSettings, load_profile
from scoring_lab.models.scorer import Scorer
from scoring_lab.models.training import mixed_precision_for, train_scorer

on_cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")


@pytest.fixture(scope="module")
def half_backbone(tmp_path_factory):
    """A folder holding a float16 copy of the tiny random backbone and its tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-fp16")
    b = load_backbone(TINY_RANDOM, seed=0)
    b.model.half().save_pretrained(folder)
    b.tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def task():
    return generate_benchmark(seed=0, scale=0.1, tasks=["gas_filled_balloons"])["gas_filled_balloons"]


@pytest.fixture(scope="module")
def smoke_settings():
    """The smoke profile's train settings, one epoch."""
    return replace(load_profile("smoke").train, max_epochs=1, patience=1)


def _param_dtypes(module) -> set:
    return {p.dtype for p in module.parameters()}


def _write(tmp_path, train_yaml: str):
    f = tmp_path / "mine.yaml"
    f.write_text("name: mine\ntrain:\n" + train_yaml)
    return f


# ---- loading -----------------------------------------------------------------------------

def test_the_fixture_checkpoint_really_is_half_precision(half_backbone):
    with safe_open(f"{half_backbone}/model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert AutoModel.from_pretrained(half_backbone).dtype == torch.float16  # transformers 5 keeps the saved dtype


def test_a_half_checkpoint_loads_in_the_dtype_asked_for(half_backbone):
    b = load_backbone(half_backbone)  # float32 by default
    assert _param_dtypes(b.model) == {torch.float32} and b.dtype == torch.float32
    assert (b.hidden_size, b.n_layers) == (32, 2)
    assert _param_dtypes(load_backbone(half_backbone, dtype="bfloat16").model) == {torch.bfloat16}
    assert _param_dtypes(load_backbone(half_backbone, dtype="float16").model) == {torch.float16}
    # the float32 weights are the saved float16 values, widened (the unused pooler is not saved: fresh each load)
    fp16 = load_backbone(half_backbone, dtype="float16").model.state_dict()
    fp32 = b.model.state_dict()
    saved = [k for k in fp16 if not k.startswith("pooler.")]
    assert len(saved) > 20 and all(torch.equal(fp32[k], fp16[k].float()) for k in saved)


def test_the_tiny_random_backbone_is_cast_after_a_float32_init():
    fp32 = load_backbone(TINY_RANDOM, seed=0).model.state_dict()
    bf16 = load_backbone(TINY_RANDOM, seed=0, dtype="bfloat16").model
    assert _param_dtypes(bf16) == {torch.bfloat16}
    assert all(torch.equal(v, fp32[k].to(torch.bfloat16)) for k, v in bf16.state_dict().items())


def test_an_unknown_dtype_is_refused_by_load_backbone():
    with pytest.raises(ValueError, match=r"dtype must be one of \('float32', 'bfloat16', 'float16'\), got 'float64'"):
        load_backbone(TINY_RANDOM, dtype="float64")


# ---- training ----------------------------------------------------------------------------

@pytest.mark.slow
def test_a_half_checkpoint_trains_in_float32_with_the_profile_settings(half_backbone, task, smoke_settings, tmp_path):
    settings = replace(smoke_settings, backbone=half_backbone)
    assert (settings.dtype, settings.mixed_precision) == ("float32", "no")
    r = train_scorer(task, settings, seed=0, progress=False)
    assert _param_dtypes(r.scorer) == {torch.float32}
    assert r.scorer.head.weight.dtype == r.scorer.encoder.dtype == torch.float32
    assert list(r.history["epoch"]) == [1] and np.isfinite(r.history[["train_loss", "val_loss"]].values).all()
    assert (r.info["dtype"], r.info["mixed_precision"]) == ("float32", "no")
    proba = r.scorer.predict_proba(task.test.texts)
    assert proba.shape == (len(task.test), 3) and proba.dtype == np.float32
    assert np.isfinite(proba).all() and ((proba >= 0) & (proba <= 1)).all()

    r.scorer.save(tmp_path, names=r.trained_parameters)
    loaded = Scorer.load(tmp_path, device="cpu")
    assert loaded.spec.dtype == "float32" and _param_dtypes(loaded) == {torch.float32}
    assert np.allclose(loaded.predict_proba(task.test.texts), proba, atol=1e-6)


@pytest.mark.slow
def test_a_scorer_trained_in_bfloat16_loads_back_in_bfloat16(task, smoke_settings, tmp_path):
    r = train_scorer(task, replace(smoke_settings, dtype="bfloat16"), seed=0, progress=False)
    assert _param_dtypes(r.scorer) == {torch.bfloat16}
    proba = r.scorer.predict_proba(task.test.texts)
    assert proba.dtype == np.float32 and np.isfinite(proba).all()
    r.scorer.save(tmp_path, names=r.trained_parameters)
    loaded = Scorer.load(tmp_path, device="cpu")
    assert loaded.spec.dtype == "bfloat16" and _param_dtypes(loaded) == {torch.bfloat16}
    assert np.array_equal(loaded.predict_proba(task.test.texts), proba)


def test_partial_fine_tuning_of_a_half_checkpoint(half_backbone, task, smoke_settings):
    r = train_scorer(task, replace(smoke_settings, backbone=half_backbone, trainable_layers=1), seed=0,
                     progress=False)
    assert r.info["first_trainable_layer"] == 1 and _param_dtypes(r.scorer) == {torch.float32}
    assert np.isfinite(r.scorer.predict_proba(task.test.texts)).all()


def test_dtype_and_mixed_precision_enter_the_cache_key(task, smoke_settings, tmp_path):
    cache = ArtifactCache(tmp_path)
    keys = {cache.key(per_task.scorer_inputs(task, s, 0)) for s in (
        smoke_settings, replace(smoke_settings, dtype="bfloat16"), replace(smoke_settings, mixed_precision="bf16"))}
    assert len(keys) == 3


# ---- mixed precision on a CPU ----------------------------------------------------------------

@pytest.mark.slow
@on_cpu_only
def test_fp16_mixed_precision_on_a_cpu_falls_back_to_full_precision(task, smoke_settings):
    fp16 = replace(smoke_settings, mixed_precision="fp16")
    with pytest.warns(UserWarning, match="fp16 needs a GPU; training on the CPU in full precision") as caught:
        assert mixed_precision_for(fp16) == "no"
    messages = [str(w.message) for w in caught if "fp16" in str(w.message)]
    assert len(messages) == 1 and "\n" not in messages[0]
    with pytest.warns(UserWarning, match="fp16 needs a GPU"):
        r = train_scorer(task, fp16, seed=0, progress=False)
    assert r.info["mixed_precision"] == "no"
    plain = train_scorer(task, smoke_settings, seed=0, progress=False)
    a, b = r.scorer.state_dict(), plain.scorer.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # exactly what mixed_precision no trains


@pytest.mark.slow
@on_cpu_only
def test_bf16_autocast_runs_on_a_cpu_and_a_later_run_can_turn_it_off(task, smoke_settings, tmp_path):
    r = train_scorer(task, replace(smoke_settings, mixed_precision="bf16"), seed=0, progress=False)
    assert r.info["mixed_precision"] == "bf16"
    assert _param_dtypes(r.scorer) == {torch.float32}  # autocast keeps float32 weights
    proba = r.scorer.predict_proba(task.test.texts)
    assert proba.shape == (len(task.test), 3) and np.isfinite(proba).all()
    # the returned scorer has no autocast left: it predicts what the saved and loaded one does
    r.scorer.save(tmp_path, names=r.trained_parameters)
    assert np.allclose(Scorer.load(tmp_path, device="cpu").predict_proba(task.test.texts), proba, atol=1e-6)
    # Accelerate's state is one per process: switching back to no in the same process works
    plain = train_scorer(task, smoke_settings, seed=0, progress=False)
    assert plain.info["mixed_precision"] == "no"
    # and autocast really ran: bf16 matrix products train slightly different weights
    a, b = r.scorer.state_dict(), plain.scorer.state_dict()
    assert not torch.equal(a["head.weight"], b["head.weight"])
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 0.05


# ---- the profile fields ----------------------------------------------------------------------

def test_every_named_profile_states_float32_and_only_default_autocasts():
    for name in ("smoke", "default", "paper"):
        t = load_profile(name).train
        assert (t.dtype, t.mixed_precision) == ("float32", "bf16" if name == "default" else "no")
    assert "AMX" in load_profile("default").notes["mixed_precision"]   # why the CPU profile autocasts, and when not to
    assert TrainSettings().dtype == "float32" and TrainSettings().mixed_precision == "no"
    notes = load_profile("paper").notes
    assert "autocast" in notes["mixed_precision"] and "falls back to no" in notes["mixed_precision"]
    assert "inference" in notes["dtype"]


@pytest.mark.parametrize("train_yaml, match", [
    ("  dtype: float64\n", r"train\.dtype: Input should be 'float32', 'bfloat16' or 'float16', got 'float64'"),
    ("  dtype: fp16\n", r"train\.dtype: Input should be .*, got 'fp16'"),
    ("  mixed_precision: fp8\n", r"train\.mixed_precision: Input should be 'no', 'bf16' or 'fp16', got 'fp8'"),
    ("  mixed_precision: yes\n", r"train\.mixed_precision: Input should be .*, got True"),
    ("  dtype: bfloat16\n  mixed_precision: bf16\n", r"train: mixed_precision 'bf16' autocasts float32 weights"),
    ("  dtyp: float32\n", r"train\.dtyp: unknown key; known: .*dtype"),
])
def test_bad_dtype_or_mixed_precision_names_the_field(tmp_path, train_yaml, match):
    with pytest.raises(ProfileError, match=match):
        load_profile(_write(tmp_path, train_yaml))


@pytest.mark.parametrize("train_yaml, expected", [
    ("  mixed_precision: no\n", ("float32", "no")),        # YAML reads an unquoted no as false
    ("  mixed_precision: \"no\"\n", ("float32", "no")),
    ("  mixed_precision: fp16\n", ("float32", "fp16")),
    ("  dtype: float16\n", ("float16", "no")),
])
def test_good_dtype_and_mixed_precision_values_load(tmp_path, train_yaml, expected):
    t = load_profile(_write(tmp_path, train_yaml)).train
    assert (t.dtype, t.mixed_precision) == expected
