"""Tensors as PyTorch users hand them over, with real PyTorch (the test extra's CPU build).

`requires_grad` tensors are detached and bfloat16 widened, as `SummaryWriter` takes them; a subclass of
`torch.Tensor` is read channels first like a plain tensor; a 0-d integer tensor is a step.
"""

from __future__ import annotations

import numpy as np
import pytest

from tbimg_cli import ImageLogger, log_images
from tbimg_cli.errors import InputTypeError

from .helpers import decode_png, load_run

torch = pytest.importorskip("torch")


def samples(run_dir, tag="x"):
    """(step, [pixels of each sample]) of every summary of `tag`."""
    return [
        (event.step, [decode_png(png) for png in event.tensor_proto.string_val[2:]])
        for event in load_run(run_dir).Tensors(tag)
    ]


def reference(tensor):
    """What the same values give as a plain float32 numpy array in NHWC, the layout numpy code keeps."""
    return tensor.detach().float().cpu().numpy().transpose(0, 2, 3, 1)


def test_a_tensor_that_requires_grad_is_detached_and_read_as_nchw(tmp_path):
    batch = torch.rand(2, 3, 8, 10, requires_grad=True) * 1.0  # a non-leaf, as a model's output is
    assert log_images(tmp_path / "t", "x", batch, step=0) == 2
    log_images(tmp_path / "n", "x", reference(batch), step=0)
    ((_, ours),), ((_, numpy_way),) = samples(tmp_path / "t"), samples(tmp_path / "n")
    assert ours[0].shape == (8, 10, 3)
    assert all(np.array_equal(a, b) for a, b in zip(ours, numpy_way, strict=True))


def test_bfloat16_is_widened_not_refused(tmp_path):
    batch = torch.rand(1, 1, 6, 6).to(torch.bfloat16)
    log_images(tmp_path / "b", "x", batch, step=0)
    log_images(tmp_path / "f", "x", reference(batch), step=0)
    ((_, ours),), ((_, numpy_way),) = samples(tmp_path / "b"), samples(tmp_path / "f")
    assert np.array_equal(ours[0], numpy_way[0])


def test_a_tensor_subclass_is_read_channels_first(tmp_path):
    class Masked(torch.Tensor):  # a user's own tensor type, defined outside torch
        pass

    image = torch.rand(3, 5, 7)
    log_images(tmp_path / "sub", "x", image.as_subclass(Masked), step=0)
    log_images(tmp_path / "plain", "x", image, step=0)
    ((_, ours),), ((_, plain),) = samples(tmp_path / "sub"), samples(tmp_path / "plain")
    assert len(ours) == 1 and ours[0].shape == (5, 7, 3) and np.array_equal(ours[0], plain[0])


def test_a_0d_integer_tensor_is_a_step_and_others_are_refused(tmp_path):
    log_images(tmp_path / "r", "x", torch.rand(4, 4), step=torch.tensor(7))
    with ImageLogger(tmp_path / "r") as logger:
        logger.log("x", torch.rand(4, 4), torch.tensor(9, dtype=torch.int64))
    assert [step for step, _ in samples(tmp_path / "r")] == [7, 9]
    for wrong in (torch.tensor(2.0), torch.tensor(True), torch.tensor([1, 2])):
        with pytest.raises(InputTypeError, match="step must be a whole number"):
            log_images(tmp_path / "r", "x", torch.rand(4, 4), step=wrong)
