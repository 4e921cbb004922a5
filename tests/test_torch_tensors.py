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


def test_every_entry_point_reads_a_batch_the_same_way(tmp_path):
    """`EventWriter.image` and `ImageLogger` take PyTorch's CHW/NCHW, numpy's NCHW and bool masks as
    `log_images` does: the same pixels from each."""
    from tbimg_cli import EventWriter

    cases = {
        "chw_tensor": torch.rand(3, 6, 5, requires_grad=True) * 1.0,
        "nchw_tensor": torch.rand(2, 3, 6, 5),
        "nchw_numpy": np.random.default_rng(1).random((2, 3, 6, 5)).astype(np.float32),
        "masks": np.random.default_rng(2).random((3, 6, 5)) > 0.5,
    }
    with EventWriter(tmp_path / "writer") as writer, ImageLogger(tmp_path / "logger") as logger:
        for tag, images in cases.items():
            writer.image(tag, images, step=0)
            logger.log(tag, images, step=0)
            log_images(tmp_path / "log_images", tag, images, step=0)
    for tag in cases:
        ((_, expected),) = samples(tmp_path / "log_images", tag)
        for entry in ("writer", "logger"):
            ((_, found),) = samples(tmp_path / entry, tag)
            assert len(found) == len(expected) and all(
                np.array_equal(a, b) for a, b in zip(found, expected, strict=True)
            ), (entry, tag)
    ((_, masks),) = samples(tmp_path / "writer", "masks")
    assert len(masks) == 3 and set(np.unique(masks[0])) <= {0, 255}


def test_a_confusion_gallery_of_nchw_tensors_that_require_grad(tmp_path):
    from tbimg_cli import log_confusion_matrix
    from tbimg_cli.confusion.matrix import MISCLASSIFIED_TAG

    images = torch.rand(6, 3, 12, 12, requires_grad=True) * 1.0
    logits = torch.rand(6, 3) * 1.0
    truth = torch.tensor([0, 1, 2, 0, 1, 2])
    logits[0] = torch.tensor([0.0, 9.0, 0.0])  # at least one mistake, so there is a gallery to show
    logits.requires_grad_(True)
    ours = log_confusion_matrix(tmp_path / "cm", truth, logits, step=1, class_names=["a", "b", "c"], images=images)
    nhwc = images.detach().permute(0, 2, 3, 1).numpy()  # the layout numpy code keeps
    theirs = log_confusion_matrix(tmp_path / "np", truth.numpy(), logits.detach().numpy(), 1, ["a", "b", "c"], nhwc)
    (gallery,), (expected,) = load_run(ours).Tensors(MISCLASSIFIED_TAG), load_run(theirs).Tensors(MISCLASSIFIED_TAG)
    assert np.array_equal(
        decode_png(gallery.tensor_proto.string_val[2]), decode_png(expected.tensor_proto.string_val[2])
    )
