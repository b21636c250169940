"""The networks and their checkpoints: shapes, the inpainting contract, spectral norm, safe round trips."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
import torch
from safetensors.torch import save_file
from torch.nn.utils import parametrize

from napari_inpaint_seg.errors import InputError
from napari_inpaint_seg.models.checkpoint import CONFIG_KEY, build_generator, load_generator, load_model, save_generator
from napari_inpaint_seg.models.config import ModelConfig, default_context
from napari_inpaint_seg.models.discriminator import SpectralNormDiscriminator
from napari_inpaint_seg.models.generator import UNetGenerator, erase, inpaint


@pytest.mark.parametrize("depth,downsample,height,width", [(2, 1, 12, 20), (2, 1, 36, 4), (3, 1, 24, 40), (1, 1, 6, 10), (2, 2, 24, 40), (1, 2, 12, 36)])
def test_generator_shape_on_odd_multiples_of_the_stride(depth, downsample, height, width):
    generator = UNetGenerator(base_channels=4, depth=depth, downsample=downsample).eval()
    with torch.no_grad():
        out = generator(torch.rand(3, 2, height, width))
    assert out.shape == (3, 1, height, width)
    assert out.min() >= 0 and out.max() <= 1


def test_generator_rejects_sides_off_the_stride():
    with pytest.raises(RuntimeError):
        UNetGenerator(base_channels=4, depth=2)(torch.rand(1, 2, 18, 20))


@pytest.mark.parametrize("height,width", [(16, 16), (24, 40), (40, 24)])
def test_discriminator_gives_one_logit_per_image(height, width):
    assert SpectralNormDiscriminator(base_channels=4)(torch.rand(5, 1, height, width)).shape == (5,)


def test_discriminator_layers_are_spectrally_normalised():
    discriminator = SpectralNormDiscriminator(base_channels=4)
    convs = [m for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(parametrize.is_parametrized(conv, "weight") for conv in convs)
    for _ in range(30):  # power iterations run in training mode
        discriminator(torch.rand(2, 1, 16, 16))
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("downsample", [1, 2])
def test_inpaint_keeps_known_pixels_exactly(downsample):
    torch.manual_seed(0)
    generator = UNetGenerator(base_channels=4, depth=2, downsample=downsample).eval()
    images = torch.rand(4, 1, 16, 24)
    holes = (torch.rand(4, 1, 16, 24) > 0.7).float()
    with torch.no_grad():
        filled = inpaint(generator, images, holes)
        prediction = generator(erase(images, holes))
    known = holes == 0
    assert torch.equal(filled[known], images[known])
    assert torch.equal(filled[~known], prediction[~known])


def test_erase_hides_the_hole_and_says_where_it_is():
    images, holes = torch.rand(2, 1, 8, 8) + 0.1, torch.zeros(2, 1, 8, 8)
    holes[:, :, 2:5, 3:6] = 1
    erased = erase(images, holes)
    assert erased.shape == (2, 2, 8, 8)
    assert torch.all(erased[:, 0][holes[:, 0] == 1] == 0) and torch.all(erased[:, 0][holes[:, 0] == 0] > 0)
    assert torch.equal(erased[:, 1:], holes)


def test_checkpoint_round_trip(tmp_path, tiny_config):
    torch.manual_seed(3)
    generator = build_generator(tiny_config)
    generator.train()(torch.rand(4, 2, 16, 16))  # move the batch-norm statistics away from their defaults
    generator.eval()
    config = replace(tiny_config, iterations=123, data="synthetic", code_version="0.1.0+test", notes={"lr": 1e-4})
    save_generator(tmp_path / "g.safetensors", generator, config)
    assert [p.name for p in tmp_path.iterdir()] == ["g.safetensors"]

    loaded, loaded_config = load_generator(tmp_path / "g.safetensors")
    assert asdict(loaded_config) == asdict(config)
    assert not loaded.training
    x = torch.rand(2, 2, 16, 24)
    with torch.no_grad():
        assert torch.equal(loaded(x), generator(x))
    for key, value in generator.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_load_model_checks_gamma_and_modality(tiny_model_path):
    generator, config = load_model(tiny_model_path, "t1", 8)
    assert config.gamma == 8 and isinstance(generator, UNetGenerator)
    with pytest.raises(InputError, match="gamma=8, not gamma=32"):
        load_model(tiny_model_path, "t1", 32)
    with pytest.raises(InputError, match="trained on t1 scans, not flair"):
        load_model(tiny_model_path, "flair", 8)


def test_refuses_pickles_by_name(tmp_path, tiny_generator):
    torch.save(tiny_generator.state_dict(), tmp_path / "g.pt")
    with pytest.raises(InputError, match="only .safetensors"):
        load_generator(tmp_path / "g.pt")


def test_refuses_weights_that_do_not_fit_the_configuration(tmp_path, tiny_config, tiny_generator):
    save_generator(tmp_path / "g.safetensors", tiny_generator, replace(tiny_config, depth=3, context=16))
    with pytest.raises(InputError, match="do not match the architecture"):
        load_generator(tmp_path / "g.safetensors")


def test_refuses_diverged_weights(tmp_path, tiny_config, tiny_generator):
    with torch.no_grad():
        next(tiny_generator.parameters())[0] = float("nan")
    save_generator(tmp_path / "g.safetensors", tiny_generator, tiny_config)
    with pytest.raises(InputError, match="NaN or Inf"):
        load_generator(tmp_path / "g.safetensors")


@pytest.mark.parametrize(
    "metadata,message",
    [
        ({}, "no napari-inpaint-seg configuration"),
        ({CONFIG_KEY: "{not json"}, "malformed"),
        ({CONFIG_KEY: "[1, 2]"}, "malformed"),
        ({CONFIG_KEY: json.dumps({"gamma": "32"})}, "gamma='32'"),
        ({CONFIG_KEY: json.dumps({"depth": 40})}, "depth=40"),
        ({CONFIG_KEY: json.dumps({"downsample": 0})}, "downsample=0"),
        ({CONFIG_KEY: json.dumps({"gamma": 32, "context": 60})}, "multiple of the UNet stride"),
        ({CONFIG_KEY: json.dumps({"modality": "ct"})}, "modality='ct'"),
        ({CONFIG_KEY: json.dumps({"intensity": "z-score"})}, "intensity convention"),
    ],
)
def test_refuses_bad_configurations_before_building_anything(tmp_path, metadata, message):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "g.safetensors"), metadata=metadata)
    with pytest.raises(InputError, match=message):
        load_generator(tmp_path / "g.safetensors")


def test_default_context_is_twice_gamma_on_the_stride():
    assert default_context(32, 3, downsample=1) == 64
    assert default_context(20, 3, downsample=1) == 40
    assert default_context(10, 3, downsample=1) == 24
    assert default_context(20, 2, downsample=2) == 40
    assert default_context(20, 3, downsample=2) == 48
    for gamma in (8, 20, 32):
        config = ModelConfig(gamma=gamma, context=default_context(gamma, 3, 2), downsample=2)
        assert config.problems() == [] and config.context >= 2 * gamma


def test_configuration_without_downsample_is_the_full_resolution_unet():
    """Checkpoints written before ``downsample`` existed were full-resolution UNets; they must not silently
    become half-resolution ones (same weights, different network) when loaded."""
    old = {k: v for k, v in asdict(ModelConfig(gamma=8, depth=2, context=16)).items() if k != "downsample"}
    assert ModelConfig.from_json(json.dumps(old)).downsample == 1
    assert ModelConfig.from_json(ModelConfig(downsample=2).to_json()).downsample == 2


def test_the_caveat_goes_with_the_shipped_t1_models_only(tiny_model_path):
    from napari_inpaint_seg.models.config import SHIPPED_MODEL_CAVEATS, shipped_model_caveat, shipped_model_path, shipped_models

    if not {("t1", 64), ("flair", 64)} <= set(shipped_models()):
        pytest.skip("the shipped models are not installed here")
    assert shipped_model_caveat([shipped_model_path("t1", 64)], "t1") == SHIPPED_MODEL_CAVEATS["t1"]
    assert shipped_model_caveat([str(shipped_model_path("t1", 32)), tiny_model_path], "t1") == SHIPPED_MODEL_CAVEATS["t1"]
    assert shipped_model_caveat([shipped_model_path("flair", 64)], "flair") is None
    assert shipped_model_caveat([tiny_model_path], "t1") is None  # a user's own T1-pre model may do better
