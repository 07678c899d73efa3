"""Input handling (cnnlens.inputs): tensors, PIL images, paths, bytes, Datasets."""
import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from cnnlens.inputs import (
    IMAGENET_MEAN,
    expected_size,
    imagenet_transform,
    iter_batches,
    num_images,
    to_batch,
)


def pil(w, h, value=(255, 0, 0), mode="RGB"):
    return Image.new(mode, (w, h), value)


def test_tensors_keep_values_and_gain_a_batch_dim():
    x = torch.rand(3, 8, 6)
    out = to_batch(x)
    assert out.shape == (1, 3, 8, 6) and out.dtype == torch.float32
    torch.testing.assert_close(out[0], x)
    assert to_batch(torch.rand(5, 1, 4, 4).double()).dtype == torch.float32
    assert to_batch(np.zeros((2, 3, 4, 4), np.float32)).shape == (2, 3, 4, 4)
    u8 = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    assert to_batch(u8).max() == 1.0  # uint8 means 0..255
    assert to_batch(torch.rand(2, 3, 8, 8), size=4).shape == (2, 3, 4, 4)


def test_bad_tensor_shape_says_what_it_got():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(C, H, W\); got shape \(1, 2, 3, 4, 5\)"):
        to_batch(torch.rand(1, 2, 3, 4, 5))
    with pytest.raises(TypeError, match="got int"):
        to_batch(7)
    with pytest.raises(ValueError, match="no images"):
        to_batch([])


def test_pil_images_default_transform_no_normalisation():
    out = to_batch([pil(8, 6), pil(8, 6, (0, 255, 0))])
    assert out.shape == (2, 3, 6, 8)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(out[1, :, 0, 0], torch.tensor([0.0, 1.0, 0.0]))
    grey = to_batch(pil(4, 4, 128, "L"))
    assert grey.shape == (1, 3, 4, 4)  # converted to RGB by default
    assert to_batch(pil(4, 4), channels=1).shape == (1, 1, 4, 4)


def test_differently_sized_images_take_the_first_size_or_the_given_one():
    out = to_batch([pil(8, 6), pil(20, 10), pil(3, 3)])
    assert out.shape == (3, 3, 6, 8)
    assert to_batch([pil(8, 6), pil(20, 10)], size=(5, 7)).shape == (2, 3, 5, 7)


def test_paths_and_bytes(tmp_path):
    img = pil(6, 4, (10, 20, 30))
    path = tmp_path / "a.png"
    img.save(path)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    from_path = to_batch([str(path), path])
    from_bytes = to_batch(buf.getvalue())
    torch.testing.assert_close(from_path[0], from_bytes[0])
    torch.testing.assert_close(from_path[1], to_batch(img)[0])
    upload = {"name": "a.png", "content": memoryview(buf.getvalue())}  # ipywidgets FileUpload
    torch.testing.assert_close(to_batch(upload), from_bytes)
    torch.testing.assert_close(to_batch((upload, upload))[1], from_bytes[0])
    assert from_path[0, 2, 0, 0] == pytest.approx(30 / 255)
    with pytest.raises(FileNotFoundError):
        to_batch([str(tmp_path / "missing.png")])


class Pairs(Dataset):
    def __init__(self, kind):
        self.kind = kind

    def __len__(self):
        return 5

    def __getitem__(self, i):
        if self.kind == "tensor":
            return torch.full((1, 4, 4), float(i)), i
        if self.kind == "pil":
            return pil(4, 4, (i, i, i)), i
        return {"image": torch.full((3, 2, 2), float(i)), "label": i}


@pytest.mark.parametrize("kind", ["tensor", "pil", "dict"])
def test_datasets(kind):
    out = to_batch(Pairs(kind))
    assert out.shape[0] == 5 and out.dtype == torch.float32
    assert num_images(Pairs(kind)) == 5
    batches = list(iter_batches(Pairs(kind), batch_size=2))
    assert [len(b) for b in batches] == [2, 2, 1]
    torch.testing.assert_close(torch.cat(batches), out)


def test_custom_and_imagenet_transforms():
    img = pil(8, 8, (255, 255, 255))
    out = to_batch([img], transform=imagenet_transform(size=4))
    assert out.shape == (1, 3, 4, 4)
    assert out[0, 0, 0, 0] == pytest.approx((1 - IMAGENET_MEAN[0]) / 0.229, rel=1e-5)
    double = to_batch([img], transform=lambda im: np.asarray(im, np.float32).transpose(2, 0, 1))
    assert double.max() == 255.0  # a custom transform replaces the default one entirely


def test_expected_size_and_iter_batches():
    declares = torch.nn.Conv2d(3, 1, 1)
    declares.pretrained_cfg = {"input_size": (3, 32, 48)}  # the timm convention
    assert expected_size(declares) == (32, 48)
    assert expected_size(torch.nn.Conv2d(1, 1, 1)) is None
    assert [len(b) for b in iter_batches(torch.rand(10, 3, 2, 2), 4)] == [4, 4, 2]
    with pytest.raises(ValueError, match="batch_size"):
        next(iter_batches(torch.rand(1, 3, 2, 2), 0))
