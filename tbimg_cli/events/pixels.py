"""How an array of images reads, the same in every entry point: which axis is which, and PyTorch's tensors.

`log_images`, `ImageLogger`, `EventWriter.image` and the confusion matrix's gallery all take their
arrays through here, so a PyTorch (C, H, W) or (N, C, H, W) batch, a numpy (N, H, W) stack of masks
or a bool mask reads the same way wherever it is handed over. Tensors are known by their class's
MRO (a `torch.Tensor` subclass counts), without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from tbimg_cli.errors import InputError

if TYPE_CHECKING:
    from numpy.typing import NDArray

CHANNELS = (1, 3, 4)
Layout = Literal["auto", "HW", "HWC", "CHW", "NHW", "NHWC", "NCHW"]


def is_torch(item: Any) -> bool:
    """A `torch.Tensor` or a subclass of it (a `Parameter`, a user's own), known without importing torch."""
    return any(cls.__name__ == "Tensor" and cls.__module__.startswith("torch") for cls in type(item).__mro__)


def torch_values(tensor: Any) -> Any:
    """A tensor numpy can read, as `SummaryWriter` takes them: detached from autograd, on the CPU, and
    bfloat16 (which numpy has no type for) widened to float32."""
    tensor = tensor.detach()
    if str(tensor.dtype) == "torch.bfloat16":
        tensor = tensor.float()
    return tensor.cpu()


def as_numpy(item: Any) -> tuple[NDArray[Any], bool]:
    """(the values as a numpy array, whether their layout guess is channels first: a PyTorch tensor's is)."""
    import numpy as np

    if is_torch(item):
        return np.asarray(torch_values(item)), True
    return np.asarray(item), False


def guess_layout(shape: tuple[int, ...], *, channels_first: bool) -> Layout:
    """Which axis is which, when the caller did not say: channels last unless the array is PyTorch's.

    A 3-D array whose last axis cannot be channels is N grey images (masks,
    say), since numpy code keeps channels last; PyTorch's (C, H, W) is read
    channels first, and so is an (N, C, H, W) whose last axis cannot be channels.
    """
    if len(shape) == 2:
        return "HW"
    if len(shape) == 3:
        first, last = shape[0] in CHANNELS, shape[-1] in (*CHANNELS, 2)
        if channels_first and first:
            return "CHW"
        if last:
            return "HWC"
        return "NHW"
    if len(shape) == 4:
        if channels_first and shape[1] in CHANNELS:
            return "NCHW"
        if shape[-1] in CHANNELS or shape[1] not in CHANNELS:
            return "NHWC"
        return "NCHW"
    raise InputError(f"images must have 2 to 4 dimensions (HW, HWC, NHWC...), got {len(shape)}: shaped {shape}")


def arranged(array: NDArray[Any], layout: Layout, *, channels_first: bool = False) -> NDArray[Any]:
    """The array as (N, H, W, C), C in 1, 3, 4 (`auto`: `guess_layout`).

    Raises:
        InputError: for a layout that does not fit, another channel count, no images or no pixels.
    """
    if layout == "auto":
        layout = guess_layout(array.shape, channels_first=channels_first)
    if array.ndim != len(layout):
        raise InputError(f"layout {layout} needs {len(layout)} dimensions, the images have {array.ndim}: {array.shape}")
    order = [layout.index(axis) for axis in "NHWC" if axis in layout]
    batch = array.transpose(order)
    if "N" not in layout:
        batch = batch[None]
    if "C" not in layout:
        batch = batch[..., None]
    if batch.shape[-1] not in CHANNELS:
        raise InputError(f"images must have 1, 3 or 4 channels (grey, RGB, RGBA), got {batch.shape[-1]}")
    if batch.shape[0] == 0:
        raise InputError("no images: the array is empty")
    if 0 in batch.shape[1:3]:
        raise InputError(f"images must be at least 1x1 pixels, got {batch.shape[2]}x{batch.shape[1]}")
    return batch
