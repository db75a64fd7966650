"""Convolutional layers: ``Conv2D``, ``MaxPool2D`` and ``Flatten``, for images (N, C, H, W).

A convolution slides a small kernel over the image and takes a dot product at
every position. Done naively that is six nested loops; ``im2col`` turns it
into ONE matrix product instead. It copies every kh x kw window of the padded
input into a column of a matrix ``cols``:

    x: (N, C, H, W)  ->  cols: (C*kh*kw, N*H_out*W_out)

The rows of ``cols`` run over (channel, kernel row, kernel column), the order
of the weights ``W: (F, C, kh, kw)`` (PyTorch's layout) flattened to
``(F, C*kh*kw)``, so the convolution is the product ``W_flat @ cols``: one GEMM
with M = F, K = C*kh*kw and N = N*H_out*W_out. Its backward is two more GEMMs
and ``col2im``, which adds every column back onto the window it came from (a
pixel in several windows collects several contributions).

Output size, for each of the two spatial axes:

    H_out = (H + 2 * padding - kh) // stride + 1

The copies loop over the kh*kw kernel offsets only: for offset (i, j) the
pixels every window sees there form the strided slice
``x[:, :, i : i + stride*(H_out-1) + 1 : stride, j : j + stride*(W_out-1) + 1 : stride]``
(H_out rows and W_out columns; the stop is the last one plus 1, so it stays inside x).
"""
import numpy as np

from course import backend
from course import init as initializers
from course.backend import namespace
from course.module import Module, Parameter

__all__ = ["Conv2D", "MaxPool2D", "Flatten", "im2col", "col2im", "conv2d_flops", "output_size"]


def _pair(value, name):
    """An int or a pair of ints -> (rows, columns), both >= 1."""
    pair = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(pair) != 2 or min(pair) < 1 or any(int(v) != v for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def output_size(size, k, stride=1, padding=0):
    """Windows along one axis of length ``size``: (size + 2 padding - k) // stride + 1."""
    return (size + 2 * padding - k) // stride + 1


def _offsets(kh, kw, stride, H_out, W_out):
    """For each kernel offset (i, j), row-major: the slices of the windows' pixels at that offset."""
    for i in range(kh):
        for j in range(kw):
            yield (slice(i, i + stride * (H_out - 1) + 1, stride),
                   slice(j, j + stride * (W_out - 1) + 1, stride))


def _channels_first(x, padding):
    """x: (N, C, H, W) -> (C, N, H + 2 padding, W + 2 padding), zero-padded (a view when padding is 0).

    With the channels outermost, every copy ``im2col`` makes at a kernel offset has the
    layout of the rows of ``cols``, so it reads and writes memory in order.
    """
    xp = namespace(x)
    x_t = xp.permute_dims(x, (1, 0, 2, 3))
    if not padding:
        return x_t
    C, N, H, W = x_t.shape
    x_pad = xp.zeros((C, N, H + 2 * padding, W + 2 * padding), dtype=x.dtype, device=x.device)
    x_pad[:, :, padding:padding + H, padding:padding + W] = x_t
    return x_pad


def _examples_first(t):
    """t: (C, N, H, W) -> (N, C, H, W) as a new row-major array.

    Transposing alone gives a view whose memory is still channels-first; reshaping that
    view to (N, C*H*W) has to copy it, in row-major order, and the reshape back is free.
    Layers that follow then read their input in order, which makes them several times faster.
    """
    xp = namespace(t)
    C, N, H, W = t.shape
    return xp.reshape(xp.reshape(xp.permute_dims(t, (1, 0, 2, 3)), (N, C * H * W)), (N, C, H, W))


def im2col(x, kh, kw, stride=1, padding=0):
    """Copy every kh x kw window of the zero-padded ``x`` into a column.

    x: (N, C, H, W) -> cols: (C*kh*kw, N*H_out*W_out). Row (c, i, j) of cols
    holds pixel (i, j) of channel c of every window; column (n, y, x) is the
    window whose output lands at (y, x) of example n.
    """
    xp = namespace(x)
    N, C, H, W = x.shape
    H_out, W_out = output_size(H, kh, stride, padding), output_size(W, kw, stride, padding)
    x_pad = _channels_first(x, padding)  # (C, N, H + 2 padding, W + 2 padding)
    cols = xp.empty((C, kh * kw, N, H_out, W_out), dtype=x.dtype, device=x.device)
    for k, (rows, columns) in enumerate(_offsets(kh, kw, stride, H_out, W_out)):
        cols[:, k, ...] = x_pad[:, :, rows, columns]
    return xp.reshape(cols, (C * kh * kw, N * H_out * W_out))


def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    """The adjoint of ``im2col``: add every column back onto its window (+=), drop the padding.

    cols: (C*kh*kw, N*H_out*W_out), x_shape: (N, C, H, W) -> dx: (N, C, H, W).
    A pixel covered by several windows receives the sum of their entries, so
    col2im(im2col(x)) is x times the number of windows covering each pixel.
    """
    xp = namespace(cols)
    N, C, H, W = x_shape
    H_out, W_out = output_size(H, kh, stride, padding), output_size(W, kw, stride, padding)
    cols = xp.reshape(cols, (C, kh * kw, N, H_out, W_out))
    dx_pad = xp.zeros((C, N, H + 2 * padding, W + 2 * padding), dtype=cols.dtype, device=cols.device)
    for k, (rows, columns) in enumerate(_offsets(kh, kw, stride, H_out, W_out)):
        dx_pad[:, :, rows, columns] += cols[:, k, ...]
    return _examples_first(dx_pad[:, :, padding:padding + H, padding:padding + W])


def _check_image(layer, x, C=None, dtype=None):
    """Raise a clear error unless x is (N, C, H, W) (of ``dtype``, when given)."""
    if x.ndim != 4 or (C is not None and x.shape[1] != C):
        raise ValueError(f"{layer!r} expects images of shape (N, {C or 'C'}, H, W) but got "
                         f"{tuple(x.shape)}; reshape a batch of single-channel images "
                         "(N, H, W) with X.reshape(N, 1, H, W)")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{layer!r} has {dtype} weights but the input is {x.dtype}; "
                        f"convert the input first, e.g. X.astype(np.{dtype})")


class Conv2D(Module):
    """2-D convolution (cross-correlation, as in PyTorch): out = W * x + b, through im2col.

    Args:
        in_channels: C, channels of the input.
        out_channels: F, number of kernels (channels of the output).
        kernel_size: k for a k x k kernel, or a pair (kh, kw).
        stride: step between windows (both axes). padding: zeros added on every side.
        init: a ``course.init`` name (default ``"he"``) or ``f(shape, rng, dtype)``;
            it draws a (fan_in, F) matrix, fan_in = C*kh*kw, which is transposed and
            reshaped to W. So "he" is N(0, 2 / fan_in), PyTorch's kaiming_normal_. b starts at 0.
        rng: seed or ``numpy.random.Generator``. dtype: float64 (default) or float32.

    Shapes: x: (N, C, H, W) -> out: (N, F, H_out, W_out), with
    H_out = (H + 2 padding - kh) // stride + 1 (W_out likewise);
    W: (F, C, kh, kw); b: (F,).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, init="he",
                 rng=None, dtype=np.float64):
        if int(in_channels) < 1 or int(out_channels) < 1 or int(stride) < 1 or int(padding) < 0:
            raise ValueError(f"Conv2D needs in_channels, out_channels, stride >= 1 and padding >= 0, "
                             f"got ({in_channels}, {out_channels}, stride={stride}, padding={padding})")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "Conv2D kernel_size")
        self.stride, self.padding = int(stride), int(padding)
        kh, kw = self.kernel_size
        fan_in = self.in_channels * kh * kw
        W = initializers.get(init)((fan_in, self.out_channels), rng, dtype)
        W = np.ascontiguousarray(W.T).reshape(self.out_channels, self.in_channels, kh, kw)
        self.W = Parameter(backend.asarray(W, dtype=dtype), "W")
        self.b = Parameter(backend.asarray(np.zeros(self.out_channels, dtype=dtype)), "b")
        self.cache = None  # (x_shape, cols) from the last forward

    def __repr__(self):
        return (f"Conv2D({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding})")

    def _out_shape(self, x_shape):
        N, _, H, W = x_shape
        (kh, kw), s, p = self.kernel_size, self.stride, self.padding
        return N, self.out_channels, output_size(H, kh, s, p), output_size(W, kw, s, p)

    def forward(self, x):
        """x: (N, C, H, W) -> out: (N, F, H_out, W_out); caches cols: (C*kh*kw, N*H_out*W_out)."""
        _check_image(self, x, self.in_channels, self.W.data.dtype)
        (kh, kw), p = self.kernel_size, self.padding
        if x.shape[2] + 2 * p < kh or x.shape[3] + 2 * p < kw:
            raise ValueError(f"{self!r}: the input {tuple(x.shape)}, padded by {p}, is smaller "
                             f"than the kernel {self.kernel_size}")
        xp = namespace(x)
        cols = im2col(x, kh, kw, self.stride, p)
        N, F, H_out, W_out = self._out_shape(x.shape)
        out = xp.reshape(self.W.data, (F, -1)) @ cols  # (F, N*H_out*W_out)
        out += self.b.data[:, None]
        self.cache = (tuple(x.shape), cols)
        return _examples_first(xp.reshape(out, (F, N, H_out, W_out)))

    def backward(self, dout):
        """dout: (N, F, H_out, W_out) -> dx: (N, C, H, W); adds dW: (F, C, kh, kw) and db: (F,).

        With dout_flat: (F, N*H_out*W_out) (dout with the axes of the forward's product):
        dW = dout_flat @ cols^T, db = the sum of dout over N, H_out and W_out, and
        dx = col2im(W_flat^T @ dout_flat), skipped (None returned) when ``input_grad`` is False.
        """
        self._check_backward(dout, None if self.cache is None else self._out_shape(self.cache[0]))
        x_shape, cols = self.cache
        xp, F = namespace(dout), self.out_channels
        dout_flat = xp.reshape(xp.permute_dims(dout, (1, 0, 2, 3)), (F, -1))
        # dW = dout_flat @ cols^T, computed as the transpose of cols @ dout_flat^T: the same
        # sums, in the orientation OpenBLAS runs faster here (2.5 ms against 4.3 for the second
        # convolution of lesson 9's CNN; benchmarks/README.md)
        self.W.grad += xp.reshape((cols @ dout_flat.T).T, self.W.shape)
        self.b.grad += xp.sum(dout_flat, axis=1)
        if not self.input_grad:
            return None
        dcols = xp.reshape(self.W.data, (F, -1)).T @ dout_flat
        return col2im(dcols, x_shape, *self.kernel_size, self.stride, self.padding)


class MaxPool2D(Module):
    """Max pooling: each output is the largest entry of a kh x kw window of one channel.

    Backward sends each output's gradient to the entry that was the maximum of
    its window. When several entries tie for the maximum, the FIRST of them in
    row-major window order gets it (as PyTorch's max_pool2d does); a pixel in
    several windows (stride < kernel) adds up what each sends it.

    Args:
        kernel_size: k or (kh, kw). stride: step between windows, the same along both axes
            (default: kh, so a k x k window moves by k; give it for a non-square kernel).

    Shapes: x: (N, C, H, W) -> out: (N, C, H_out, W_out), H_out = (H - kh) // stride + 1.
    """

    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _pair(kernel_size, "MaxPool2D kernel_size")
        self.stride = self.kernel_size[0] if stride is None else int(stride)
        if self.stride < 1:
            raise ValueError(f"MaxPool2D needs stride >= 1, got {stride}")
        self.cache = None  # (x_shape, first: (kh*kw, N, C, H_out, W_out), True at each window's max)

    def __repr__(self):
        return f"MaxPool2D(kernel_size={self.kernel_size}, stride={self.stride})"

    def forward(self, x):
        """x: (N, C, H, W) -> out: (N, C, H_out, W_out); caches which window entry was the max."""
        _check_image(self, x)
        (kh, kw), s = self.kernel_size, self.stride
        H_out, W_out = output_size(x.shape[2], kh, s), output_size(x.shape[3], kw, s)
        if H_out < 1 or W_out < 1:
            raise ValueError(f"{self!r}: the input {tuple(x.shape)} is smaller than the window")
        xp = namespace(x)
        # windows[k] holds entry k (row-major) of every window: (kh*kw, N, C, H_out, W_out)
        windows = xp.stack([x[:, :, r, c] for r, c in _offsets(kh, kw, s, H_out, W_out)])
        out = xp.max(windows, axis=0)
        first = windows == out  # the entries equal to their window's max; keep the first of each
        seen = first[0, ...]
        for k in range(1, kh * kw):
            first[k, ...] = first[k, ...] & ~seen
            seen = seen | first[k, ...]
        self.cache = (tuple(x.shape), first)
        return out

    def backward(self, dout):
        """dout: (N, C, H_out, W_out) -> dx: (N, C, H, W), dout at each window's arg-max, 0 elsewhere."""
        self._check_backward(dout, None if self.cache is None else self.cache[1].shape[1:])
        if not self.input_grad:
            return None
        x_shape, first = self.cache
        xp = namespace(dout)
        dwindows = xp.astype(first, dout.dtype) * dout  # (kh*kw, N, C, H_out, W_out)
        dx = xp.zeros(x_shape, dtype=dout.dtype, device=dout.device)
        overlap = self.stride < max(self.kernel_size)  # can a pixel be in several windows?
        for k, (r, c) in enumerate(_offsets(*self.kernel_size, self.stride, *dout.shape[2:])):
            if overlap:
                dx[:, :, r, c] += dwindows[k, ...]
            else:  # each pixel gets at most one value: writing it is about twice as fast
                dx[:, :, r, c] = dwindows[k, ...]
        return dx


class Flatten(Module):
    """Reshape each example to one row.  x: (N, C, H, W) -> out: (N, C*H*W); backward reshapes back."""

    shape = out_shape = None  # the last forward's input and output shapes

    def forward(self, x):
        """x: (N, ...) -> out: (N, D), D the product of the other axes."""
        out = namespace(x).reshape(x, (x.shape[0], -1))
        self.shape, self.out_shape = tuple(x.shape), tuple(out.shape)
        return out

    def backward(self, dout):
        """dout: (N, D) -> dx: (N, C, H, W), the input's shape."""
        self._check_backward(dout, self.out_shape)
        return namespace(dout).reshape(dout, self.shape) if self.input_grad else None


def conv2d_flops(N, C_in, H, W, C_out, kh, kw, stride=1, padding=0, bias=True):
    """FLOPs of one Conv2D forward, counting a multiply-add as two (as ``course.flops`` does).

    Each of the N * C_out * H_out * W_out outputs is a dot product of length
    C_in * kh * kw: 2 N C_out H_out W_out C_in kh kw FLOPs, plus N C_out H_out W_out
    bias additions with ``bias`` (as ``flops.mlp_forward_flops`` counts them).
    Without the bias this is exactly ``flops.gemm_flops(M, N', K)`` of the product
    im2col makes: M = C_out, K = C_in kh kw, N' = N H_out W_out. The im2col copy
    itself is memory traffic, not arithmetic, and is not counted.
    """
    outputs = N * C_out * output_size(H, kh, stride, padding) * output_size(W, kw, stride, padding)
    return 2 * outputs * C_in * kh * kw + (outputs if bias else 0)
