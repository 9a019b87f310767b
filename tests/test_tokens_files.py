"""Token files and encode bounds: whatever bytes a user offers, the answer is the tokens that were
saved or a ValueError that names the problem; nothing is unpickled, nothing runs unbounded."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

import vle_core
from vle_core import Tokens
from vle_core.vle import MAX_TOKENS


def tokens_file(path, **replace):
    """A well-formed file of 3 tokens for a 16x24 image, with any tensor or metadata replaced."""
    n = 3
    tensors = {
        "latents": torch.randn(n, 4, 2, 3),
        "mean": torch.zeros(n, 3),
        "std": torch.ones(n, 3),
        "stage": torch.arange(1, n + 1),
    }
    meta = {"format": "vle-tokens/1", "height": "16", "width": "24"}
    for key, value in replace.items():
        (meta if isinstance(value, str) else tensors)[key] = value
    save_file({k: v for k, v in tensors.items() if v is not None}, str(path), metadata=meta)
    return path


def test_a_well_formed_file_loads_as_saved(tmp_path):
    tokens = Tokens.load(tokens_file(tmp_path / "t.safetensors"))
    assert len(tokens) == 3 and tokens.image_size == (16, 24) and tokens.stage.tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    "replace, problem",
    [
        ({"latents": torch.full((3, 4, 2, 3), float("nan"))}, "finite"),
        ({"std": torch.tensor([[1.0, float("inf"), 1.0]] * 3)}, "finite"),
        ({"latents": torch.randn(3, 4, 5, 5)}, "do not fit"),
        ({"height": "1000000000"}, "outside"),
        ({"width": "-8"}, "outside"),
        ({"height": "sixteen"}, "invalid literal"),
        ({"stage": torch.tensor([1.5, 2.0, 3.0])}, "integers"),
        ({"stage": torch.tensor([0, 1, 2])}, "stages"),
        ({"mean": None}, "mean"),
        ({"latents": torch.randint(0, 9, (3, 4, 2, 3))}, "finite floats"),
        ({"latents": torch.full((3, 4, 2, 3), 1e30)}, "within"),
        ({"std": torch.tensor([[1.0, 2e4, 1.0]] * 3)}, "within"),
    ],
)
def test_a_tampered_file_is_refused_with_its_problem_named(tmp_path, replace, problem):
    with pytest.raises(ValueError, match="is not a VLE tokens file") as error:
        Tokens.load(tokens_file(tmp_path / "t.safetensors", **replace))
    assert problem in str(error.value)


class _Exploit:
    def __reduce__(self):
        return (open, ("/tmp/vle-pickle-ran", "w"))


def test_a_pickle_is_refused_and_never_unpickled(tmp_path):
    canary = "/tmp/vle-pickle-ran"
    path = tmp_path / "tokens.safetensors"
    path.write_bytes(pickle.dumps({"latents": _Exploit()}))
    torch.save({"latents": torch.zeros(1)}, tmp_path / "torch.pt")
    for offered in (path, tmp_path / "torch.pt"):
        with pytest.raises(ValueError, match="is not a VLE tokens file"):
            Tokens.load(offered)
    assert not Path(canary).exists()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4096))
def test_random_bytes_are_a_value_error_never_a_crash(tmp_path, data):
    path = tmp_path / "random.safetensors"
    path.write_bytes(data)
    with pytest.raises(ValueError):
        Tokens.load(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=10_000), flip=st.integers(min_value=0, max_value=10_000))
def test_a_truncated_or_bit_flipped_file_loads_or_is_a_value_error(tmp_path, cut, flip):
    data = bytearray(tokens_file(tmp_path / "good.safetensors").read_bytes())
    data[flip % len(data)] ^= 0x5A
    path = tmp_path / "bad.safetensors"
    path.write_bytes(bytes(data[: len(data) - cut % len(data)]))
    try:
        tokens = Tokens.load(path)
    except ValueError:
        return
    # a flip inside the data: still a valid file
    assert torch.isfinite(tokens.latents).all() and tokens.latents.shape[2:] == (
        2,
        3,
    )


def test_encode_refuses_more_tokens_than_its_bound_at_once(tiny_vle):
    image = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match=f"between 1 and {MAX_TOKENS}"):
        tiny_vle.encode(image, MAX_TOKENS + 1)
    with pytest.raises(ValueError, match="between 1 and"):
        tiny_vle.encode(image, 0)
    assert len(tiny_vle.encode(image, 2).tokens) == 2
    with pytest.raises(ValueError, match="between 1 and"):
        tiny_vle.tokens_needed(image, 10_000, mse=0.0)
    assert vle_core.vle.MAX_TOKENS == MAX_TOKENS
