"""MTCNN's three nets in torch: the reference the shipped ONNX files are checked against
(``lab.export_detectors``, tests/lab/test_export_detectors.py).

The layer names are facenet-pytorch's, so its state dicts load with ``strict=True``.
Importing this module imports torch (~240 MB resident): the serving path does not.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core import threads


class PNet(nn.Module):
    """12x12 proposal net, run fully convolutionally over an image pyramid."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)[:, 1]


class RNet(nn.Module):
    """24x24 refinement net."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # the Caffe original was trained on transposed images: flatten in its order
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(nn.Module):
    """48x48 output net: final score, box and five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)[:, 1]


def load_torch_nets(states: dict[str, dict[str, np.ndarray]]) -> tuple[PNet, RNet, ONet]:
    """The three nets with facenet-pytorch's state dicts (``lab.export_detectors``)."""
    nets = []
    for name, net in (("pnet", PNet()), ("rnet", RNet()), ("onet", ONet())):
        state = {key: torch.from_numpy(value) for key, value in states[name].items()}
        net.load_state_dict(state, strict=True)
        # channels-last: torch's CPU max-pooling is ~8x faster in it for these shapes
        nets.append(net.eval().to(memory_format=torch.channels_last))
    threads.configure()  # torch is loaded now: give it this process's thread count
    return tuple(nets)


class TorchNet:
    """A net as ``core.detection.mtcnn`` runs one: (N, H, W, 3) float32 in, numpy arrays out."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        with torch.inference_mode():
            # NHWC memory seen as NCHW is channels-last, the fast layout here
            out = self.net(torch.from_numpy(x).permute(0, 3, 1, 2))
        return tuple(o.numpy() for o in out)


def torch_runners(states: dict[str, dict[str, np.ndarray]]) -> tuple[TorchNet, TorchNet, TorchNet]:
    """The reference cascade's nets, as ``core.detection.mtcnn.Mtcnn(nets=...)`` takes them."""
    return tuple(TorchNet(net) for net in load_torch_nets(states))
