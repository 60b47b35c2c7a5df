"""SSIMULACRA2: a perceptual score of a distorted image against its reference, 100 for identical.

The metric is Jon Sneyers' (Cloudinary, 2022; version 2.1, April 2023), as its reference C++
implementation defines it: https://github.com/cloudinary/ssimulacra2, ``src/ssimulacra2.cc`` (the same
code is libjxl's ``tools/ssimulacra2.cc``). Scale of the score: 90 visually lossless at 1:1, 70 high
quality, 50 medium, 30 low; it can go below 0 for very bad images.

The computation, for 8-bit sRGB input of ``H`` × ``W`` pixels (every step on both images):

1. sRGB to linear RGB (IEC 61966-2-1's transfer function) as ``(3, H, W)`` float32 planes.
2. Up to 6 scales, 1:1 to 1:32: each one halves the previous scale's linear RGB with a 2 × 2 box
   average (the last row and column repeated when a side is odd). A scale is computed while the
   previous one is at least 8 × 8 pixels (scale 0: the image itself), as the reference does.
3. Per scale, linear RGB to XYB, JPEG XL's colour space: the opsin absorbance matrix and bias, a cube
   root (libjxl ``opsin_params.h``), then the reference's ``MakePositiveXYB`` rescaling
   (``X * 14 + 0.42``, ``Y + 0.01``, ``B - Y + 0.55``).
4. Per scale and XYB channel, with the reference's blur (libjxl's recursive Gaussian, sigma 1.5 px,
   zero outside the image; here its exact 9-tap impulse response as a separable convolution):
   the SSIM map without the luminance term's denominator (the reference's correction:
   ``1 - (mu1 - mu2)^2`` replaces ``2 mu1 mu2 / (mu1^2 + mu2^2)``), as an error ``max(0, 1 - SSIM)``;
   and the edge ratio ``(1 + |img2 - mu2|) / (1 + |img1 - mu1|) - 1``, whose positive part is the
   "artifact" map (ringing, blocking) and negative part the "detail lost" map (blur).
5. Each map's mean and L4 norm (``mean(d^4)^(1/4)``): 108 values for 6 scales; their weighted sum
   with the reference's 108 published weights (``WEIGHTS``), then the reference's cubic and power
   mapping to the 0..100 scale. With fewer than 6 scales the reference takes the first weights in
   order (its loop index runs on), and so does this module.

Terms whose weights are all 0 (SSIM of X and B at 1:1, everything of Y at 1:32, ...) are not
computed: the score is the same, and 1:1, most of the work, blurs 5 planes instead of 9.

Agreement (``python -m bench.ssimulacra2 --cpp``; 168 pairs, 12 corpus photos at 800 px wide, JPEG,
WebP and AVIF at qualities 20 to 95): the C++ reference's score within 0.26 points on photos below
q95 (median 0.01); up to 2.5 lower in the C++ on a smooth synthetic gradient at the highest
qualities, where this module and the PyPI port agree. The PyPI port (``ssimulacra2`` 0.3) departs
from the reference at the image's left and right edges (it mirrors, the reference reads zeros: up to
3 points at low quality) and in the number of scales of images 113 to 224 px on the short side (up
to 30 points); with those aligned, it agrees within 0.5 (``tests/test_ssimulacra2.py``).

Input: pyvips images, 3 bands, 8-bit (``uchar``), sRGB; flatten an alpha band first (the reference
tool blends onto dark and light grey and keeps the lower score: ``search`` does that) and convert
other colour spaces to sRGB. The score is not symmetric: the reference image is the one whose edges
count as detail that can be lost. Blocking (numpy; BLAS on the calling thread, and on
``OPENBLAS_NUM_THREADS`` threads of its own: set it to 1 in a server that renders on every core).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyvips

Planes = npt.NDArray[np.float32]  # (channels, height, width)

#: Smallest width and height the reference accepts, in pixels.
MIN_SIDE: Final = 8
SCALES: Final = 6
_C2: Final = 0.0009  # the SSIM term's constant (reference ``kC2``)
_SIGMA: Final = 1.5  # px, the blur's standard deviation
_BLOCK: Final = 32  # output pixels per matrix product of the blur (fast on BLAS, little waste)

#: libjxl ``lib/jxl/cms/opsin_params.h``: the opsin absorbance matrix (rows: L, M, S mixes of linear
#: R, G, B; each row sums to 1) and bias.
_M20, _M21 = 0.24342268924547819, 0.20476744424496821
_OPSIN: Final = np.array(
    [[0.30, 1.0 - 0.078 - 0.30, 0.078], [0.23, 1.0 - 0.078 - 0.23, 0.078], [_M20, _M21, 1.0 - _M20 - _M21]],
    dtype=np.float32,
)
_BIAS: Final = 0.0037930732552754493
#: From cube roots (L', M', S', each minus cbrt(bias)) to the reference's positive XYB:
#: X = 14 * (L' - M') / 2 + 0.42, Y = (L' + M') / 2 + 0.01, B = S' - (L' + M') / 2 + 0.55.
_TO_XYB: Final = np.array([[7.0, -7.0, 0.0], [0.5, 0.5, 0.0], [-0.5, -0.5, 1.0]], dtype=np.float32)
_XYB_OFFSET: Final = np.array([[0.42], [0.01 - np.cbrt(_BIAS)], [0.55]], dtype=np.float32)

#: The reference's weights (``Msssim::Score``), in its loop order: channel (X, Y, B), scale (1:1 ..
#: 1:32), norm (L1, L4), map (SSIM error, artifact, detail lost: the three on a line).
WEIGHTS: Final = np.array(
    [
        0.0, 0.0007376606707406586, 0.0,  # X 1:1: L1
        0.0, 0.0007793481682867309, 0.0,  # L4
        0.0, 0.0004371155730107379, 0.0,  # X 1:2: L1
        1.1041726426657346, 0.00066284834129271, 0.00015231632783718752,  # L4
        0.0, 0.0016406437456599754, 0.0,  # X 1:4: L1
        1.8422455520539298, 11.441172603757666, 0.0,  # L4
        0.0007989109436015163, 0.000176816438078653, 0.0,  # X 1:8: L1
        1.8787594979546387, 10.94906990605142, 0.0,  # L4
        0.0007289346991508072, 0.9677937080626833, 0.0,  # X 1:16: L1
        0.00014003424285435884, 0.9981766977854967, 0.00031949755934435053,  # L4
        0.0004550992113792063, 0.0, 0.0,  # X 1:32: L1
        0.0013648766163243398, 0.0, 0.0,  # L4
        0.0, 0.0, 0.0,  # Y 1:1: L1
        7.466890328078848, 0.0, 17.445833984131262,  # L4
        0.0006235601634041466, 0.0, 0.0,  # Y 1:2: L1
        6.683678146179332, 0.00037724407979611296, 1.027889937768264,  # L4
        225.20515300849274, 0.0, 0.0,  # Y 1:4: L1
        19.213238186143016, 0.0011401524586618361, 0.001237755635509985,  # L4
        176.39317598450694, 0.0, 0.0,  # Y 1:8: L1
        24.43300999870476, 0.28520802612117757, 0.0004485436923833408,  # L4
        0.0, 0.0, 0.0,  # Y 1:16: L1
        34.77906344483772, 44.835625328877896, 0.0,  # L4
        0.0, 0.0, 0.0,  # Y 1:32: L1
        0.0, 0.0, 0.0,  # L4
        0.0, 0.0008680556573291698, 0.0,  # B 1:1: L1
        0.0, 0.0, 0.0,  # L4
        0.0, 0.0005313191874358747, 0.0,  # B 1:2: L1
        0.00016533814161379112, 0.0, 0.0,  # L4
        0.0, 0.0, 0.0,  # B 1:4: L1
        0.0004179171803251336, 0.0017290828234722833, 0.0,  # L4
        0.0020827005846636437, 0.0, 0.0,  # B 1:8: L1
        8.826982764996862, 23.19243343998926, 0.0,  # L4
        95.1080498811086, 0.9863978034400682, 0.9834382792465353,  # B 1:16: L1
        0.0012286405048278493, 171.2667255897307, 0.9807858872435379,  # L4
        0.0, 0.0, 0.0,  # B 1:32: L1
        0.0005130064588990679, 0.0, 0.00010854057858411537,  # L4
    ]
)  # fmt: skip


def _srgb_to_linear() -> npt.NDArray[np.float32]:
    """The 256-entry table of IEC 61966-2-1's sRGB decoding, 8-bit code value -> linear 0..1."""
    v = np.arange(256, dtype=np.float64) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


_LINEAR: Final = _srgb_to_linear()


def _recursive_gaussian_taps(sigma: float) -> npt.NDArray[np.float64]:
    """The impulse response of the reference's blur, libjxl's recursive Gaussian (``tools/gauss_blur.cc``,
    ``CreateRecursiveGaussian``; D. Charalampidis, "Recursive implementation of the Gaussian filter
    using truncated cosine functions", IEEE Trans. Signal Process. 64(14), 2016): the sum of three
    cosines ``beta_k cos(omega_k x)``, ``k`` = 1, 3, 5, for ``|x| < N`` = round(3.2795 sigma + 0.2546)
    (eq. 57), 0 beyond. At sigma 1.5: 9 taps summing to 1, the centre 0.2646."""
    n = float(round(3.2795 * sigma + 0.2546))
    omega = np.pi / (2.0 * n) * np.array([1.0, 3.0, 5.0])  # Table I
    sign = np.array([1.0, -1.0, 1.0])
    p = sign / np.tan(0.5 * omega)  # (37)
    r = sign * p * p / np.sin(omega)  # (44)
    rho = np.exp(-0.5 * sigma * sigma * omega * omega) / n  # (50)
    d13, d35, d51 = p[0] * r[1] - r[0] * p[1], p[1] * r[2] - r[1] * p[2], p[2] * r[0] - r[2] * p[0]  # (52)
    zeta = np.array([d35 / d13, d51 / d13, 1.0])
    beta = np.linalg.solve(np.array([p, r, zeta]), [1.0, n * n - sigma * sigma, float(zeta @ rho)])  # (53)-(56)
    x = np.arange(1 - n, n)
    taps: npt.NDArray[np.float64] = np.cos(np.outer(x, omega)) @ beta
    return taps


def _banded(taps: npt.NDArray[np.float64]) -> tuple[Planes, Planes]:
    """The blur as banded matrices: ``K`` of ``(_BLOCK + taps - 1, _BLOCK)``, whose column ``j`` holds
    ``taps`` from row ``j``, and its transpose."""
    band = np.zeros((_BLOCK + len(taps) - 1, _BLOCK))
    for j in range(_BLOCK):
        band[j : j + len(taps), j] = taps
    return band.astype(np.float32), np.ascontiguousarray(band.T, dtype=np.float32)


_TAPS: Final = _recursive_gaussian_taps(_SIGMA)
_RADIUS: Final = len(_TAPS) // 2  # px: 4 at sigma 1.5
_ALONG_ROWS, _ALONG_COLUMNS = _banded(_TAPS)


def _blur(planes: list[Planes]) -> Planes:
    """Each ``(height, width)`` plane blurred (Gaussian, sigma 1.5 px, zero outside): ``(n, height, width)``.

    Separable, as matrix products of ``_BLOCK``-pixel strips with a banded matrix (BLAS does the
    multiply-adds). Zero padding is the reference's boundary condition.
    """
    n, (height, width), r, b = len(planes), planes[0].shape, _RADIUS, _BLOCK
    cols, rows = -(-width // b) * b, -(-height // b) * b
    padded = np.zeros((n, height, cols + 2 * r), np.float32)
    for i, plane in enumerate(planes):
        padded[i, :, r : r + width] = plane
    across = np.zeros((n, rows + 2 * r, cols), np.float32)
    for x in range(0, cols, b):
        np.matmul(padded[:, :, x : x + b + 2 * r], _ALONG_ROWS, out=across[:, r : r + height, x : x + b])
    del padded
    out = np.empty((n, rows, cols), np.float32)
    for y in range(0, rows, b):
        np.matmul(_ALONG_COLUMNS, across[:, y : y + b + 2 * r, :], out=out[:, y : y + b, :])
    return out[:, :height, :width]


def _linear_rgb(image: pyvips.Image, name: str) -> Planes:
    """``image`` (3-band 8-bit sRGB) as linear RGB ``(3, height, width)`` float32 planes.

    Raises:
        ValueError: not 3 bands of 8-bit samples, or smaller than ``MIN_SIDE`` on a side.
    """
    if image.bands != 3 or image.format != "uchar":
        raise ValueError(
            f"SSIMULACRA2 takes 3-band 8-bit sRGB images; the {name} has {image.bands} band(s) of {image.format}"
            " (flatten or drop alpha, convert to sRGB first)"
        )
    if image.width < MIN_SIDE or image.height < MIN_SIDE:
        raise ValueError(
            f"SSIMULACRA2 needs at least {MIN_SIDE}x{MIN_SIDE} px; the {name} is {image.width}x{image.height}"
        )
    pixels = np.frombuffer(image.write_to_memory(), dtype=np.uint8).reshape(image.height, image.width, 3)
    return _LINEAR[pixels.transpose(2, 0, 1)]


def _half(linear: Planes) -> Planes:
    """``(3, h, w)`` -> ``(3, ceil(h/2), ceil(w/2))``: 2 × 2 box averages, the last row/column repeated."""
    _, h, w = linear.shape
    if h % 2 or w % 2:
        linear = np.pad(linear, ((0, 0), (0, h % 2), (0, w % 2)), mode="edge")
    total = linear[:, 0::2, 0::2] + linear[:, 0::2, 1::2]
    total += linear[:, 1::2, 0::2]
    total += linear[:, 1::2, 1::2]
    total *= np.float32(0.25)
    return total


def _xyb(linear: Planes) -> Planes:
    """Linear RGB ``(3, h, w)`` -> the reference's positive XYB ``(3, h, w)`` (float32)."""
    _, h, w = linear.shape
    mixed = _OPSIN @ linear.reshape(3, h * w)
    mixed += np.float32(_BIAS)
    np.maximum(mixed, 0.0, out=mixed)
    np.cbrt(mixed, out=mixed)
    xyb = _TO_XYB @ mixed
    xyb += _XYB_OFFSET
    return xyb.reshape(3, h, w)


def _scale_count(width: int, height: int) -> int:
    """How many scales the reference computes: scale ``s`` > 0 while scale ``s - 1`` is at least 8 × 8."""
    count = 1
    while count < SCALES and width >= MIN_SIDE and height >= MIN_SIDE:
        width, height = -(-width // 2), -(-height // 2)
        count += 1
    return count


@dataclass(frozen=True, slots=True)
class _Needs:
    """The channels (0 X, 1 Y, 2 B) whose SSIM and edge maps have a non-zero weight at one scale."""

    ssim: tuple[int, ...]
    edges: tuple[int, ...]


@functools.cache
def _needs(scales: int) -> tuple[_Needs, ...]:
    """Per scale, what has weight when ``scales`` scales are computed (the weights are read in order)."""
    weights = WEIGHTS[: 18 * scales].reshape(3, scales, 2, 3)
    return tuple(
        _Needs(
            ssim=tuple(c for c in range(3) if weights[c, s, :, 0].any()),
            edges=tuple(c for c in range(3) if weights[c, s, :, 1:].any()),
        )
        for s in range(scales)
    )


def _norms(error: Planes) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per plane of ``(n, h, w)`` non-negative errors: the mean and the L4 norm ``mean(e^4)^(1/4)``."""
    mean = error.mean(axis=(1, 2), dtype=np.float64)
    error *= error
    error *= error
    return mean, np.sqrt(np.sqrt(error.mean(axis=(1, 2), dtype=np.float64)))


@dataclass(frozen=True, slots=True)
class _Scale:
    """The reference image at one scale: blurred XYB ``mu`` ``(3, h, w)``; for the channels whose SSIM
    counts (``needs.ssim``), XYB and its variance ``blur(x^2) - mu^2``; for those whose edges count,
    ``1 + |x - mu|``."""

    xyb: Planes
    mu: Planes
    variance: Planes
    edge: Planes
    needs: _Needs


class Reference:
    """A reference image prepared once (its XYB and blurred statistics at every scale), to score many
    distorted versions of it: ``Reference(image).score(distorted)``.

    ``image``: a pyvips image, 3 bands, 8-bit sRGB, at least 8 × 8 px. Holds about 48 bytes per
    pixel (20 MB at 800 × 533 px); each ``score`` needs about 105 bytes per pixel more while it runs
    (45 MB). Thread-safe: ``score`` only reads it.

    Raises:
        ValueError: ``image`` is not 3-band 8-bit, or smaller than 8 × 8 px.
    """

    def __init__(self, image: pyvips.Image) -> None:
        self.width: int = image.width
        self.height: int = image.height
        linear = _linear_rgb(image, "reference")
        scales: list[_Scale] = []
        for index, needs in enumerate(_needs(_scale_count(self.width, self.height))):
            if index:
                linear = _half(linear)
            xyb = _xyb(linear)
            ssim, edges = list(needs.ssim), list(needs.edges)
            blurred = _blur([*xyb, *(xyb[c] * xyb[c] for c in ssim)])
            mu = blurred[:3].copy()  # not a view: the blur's padded buffer goes
            scales.append(
                _Scale(xyb[ssim], mu, blurred[3:] - mu[ssim] ** 2, 1.0 + np.abs(xyb[edges] - mu[edges]), needs)
            )
        self._scales = tuple(scales)

    def score(self, distorted: pyvips.Image) -> float:
        """SSIMULACRA2 of ``distorted`` against this reference: 100 for identical pixels, lower for
        more visible distortion (below 0 possible).

        ``distorted``: a pyvips image of the same size, 3 bands, 8-bit sRGB. Takes 20 to 35 ms at
        800 × 533 px on one core (``python -m bench.ssimulacra2``; with ``OPENBLAS_NUM_THREADS`` 1).

        Raises:
            ValueError: another size than the reference's, or not 3-band 8-bit.
        """
        values = self.subscores(distorted)
        return _final(float(np.sum(WEIGHTS[: values.size] * np.abs(values).reshape(-1))))

    def subscores(self, distorted: pyvips.Image) -> npt.NDArray[np.float64]:
        """The 108 (18 per scale) norms the score weighs, ``(3 channels, scales, 2 norms, 3 maps)`` in
        ``WEIGHTS``' order; 0 where every weight is 0 (not computed). Raises as ``score``."""
        if (distorted.width, distorted.height) != (self.width, self.height):
            raise ValueError(
                f"SSIMULACRA2 compares images of one size: the reference is {self.width}x{self.height},"
                f" the distorted image {distorted.width}x{distorted.height}"
            )
        linear = _linear_rgb(distorted, "distorted image")
        values = np.zeros((3, len(self._scales), 2, 3))  # channel, scale, norm, map: WEIGHTS' order
        for index, ref in enumerate(self._scales):
            if index:
                linear = _half(linear)
            xyb = _xyb(linear)
            ssim, edges = list(ref.needs.ssim), list(ref.needs.edges)
            mu_wanted = sorted(set(ssim) | set(edges))
            planes = [xyb[c] for c in mu_wanted]
            planes += [xyb[c] * xyb[c] for c in ssim] + [xyb[c] * ref.xyb[i] for i, c in enumerate(ssim)]
            blurred = _blur(planes)
            position = {c: i for i, c in enumerate(mu_wanted)}
            if ssim:
                mu1 = ref.mu[ssim]
                mu2 = blurred[[position[c] for c in ssim]]
                k = len(mu_wanted)
                sigma22, sigma12 = blurred[k : k + len(ssim)], blurred[k + len(ssim) :]
                mean_error = 1.0 - (mu1 - mu2) ** 2
                mean_error *= 2.0 * (sigma12 - mu1 * mu2) + np.float32(_C2)
                mean_error /= ref.variance + (sigma22 - mu2 * mu2) + np.float32(_C2)
                error = np.maximum(np.float32(1.0) - mean_error, np.float32(0.0))
                values[ssim, index, 0, 0], values[ssim, index, 1, 0] = _norms(error)
            if edges:
                ratio = 1.0 + np.abs(xyb[edges] - blurred[[position[c] for c in edges]])
                ratio /= ref.edge
                ratio -= np.float32(1.0)
                values[edges, index, 0, 1], values[edges, index, 1, 1] = _norms(np.maximum(ratio, np.float32(0.0)))
                values[edges, index, 0, 2], values[edges, index, 1, 2] = _norms(np.maximum(-ratio, np.float32(0.0)))
        return values


def _final(weighted: float) -> float:
    """The reference's mapping of the weighted sum to the 0..100 scale (``Msssim::Score``)."""
    x = weighted * 0.9562382616834844
    x = 2.326765642916932 * x - 0.020884521182843837 * x * x + 6.248496625763138e-05 * x * x * x
    return 100.0 - 10.0 * x**0.6276336467831387 if x > 0 else 100.0


def score(reference: pyvips.Image, distorted: pyvips.Image) -> float:
    """SSIMULACRA2 of ``distorted`` against ``reference`` (two pyvips images of one size, 3 bands, 8-bit
    sRGB): 100 for identical pixels. To score several images against one reference, use ``Reference``.

    Raises:
        ValueError: sizes differ, an image is not 3-band 8-bit, or smaller than 8 × 8 px.
    """
    return Reference(reference).score(distorted)
