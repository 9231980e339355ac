"""What a measurement needs besides the model: the machine's matmul peak, FLOP counts for the CPU attention and LSTM kernels, the
model's largest GEMM, the activations a forward pass holds for the backward, this process's peak resident memory, and
interleaved timings of `Trainer.evaluate`. Used by `fpt-hf bench` (benchmark.py), the task benchmarks (benchmark_tasks.py) and the memory tests."""

from __future__ import annotations

import resource
import statistics
import time

import torch


def matmul_peak(dtype: torch.dtype, shape: tuple[int, int, int] = (2048, 2048, 2048), repeats: int = 5, calls: int = 4) -> dict:
    """Achieved FLOP/s of `(m, k) @ (k, n)` matmuls in `dtype` on this machine, now: `repeats` timings of `calls` products
    each after two warm-ups; median, min and max over the repeats. The training scripts pass the model's own GEMM shape
    (tokens x hidden x intermediate), so the peak is what these matrices can reach, not a square ideal."""
    import statistics

    m, k, n = shape
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(2):
        a @ b
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            a @ b
        rates.append(2 * m * k * n * calls / (time.perf_counter() - start))
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def count_cpu_kernel_flops() -> None:
    """Teach `FlopCounterMode` the CPU kernels torch's counter skips (it counts their GPU counterparts). Idempotent.

    - flash attention: torch's own SDPA formulas, halved for `is_causal` calls (the kernel skips the masked half;
      explicit masks count in full);
    - oneDNN's LSTM layer (`nn.LSTM` in fp32 on CPU): its two GEMMs per step, `2 * rows * 4h * (input + h)` forward,
      and twice that backward (the gradients of the inputs and of the weights). Gate nonlinearities are not counted,
      as for every other elementwise op."""
    from torch.utils import flop_counter

    aten = torch.ops.aten
    forward, backward = aten._scaled_dot_product_flash_attention_for_cpu, aten._scaled_dot_product_flash_attention_for_cpu_backward
    if forward in flop_counter.flop_registry:
        return

    @flop_counter.register_flop_formula(forward)
    def _forward(query_shape, key_shape, value_shape, dropout_p=0.0, is_causal=False, *args, out_shape=None, **kwargs) -> int:
        flops = flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)
        return flops // 2 if is_causal else flops

    @flop_counter.register_flop_formula(backward)
    def _backward(grad_out_shape, query_shape, key_shape, value_shape, out_shape_, logsumexp_shape, dropout_p=0.0,
                  is_causal=False, *args, out_shape=None, **kwargs) -> int:
        flops = flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)
        return flops // 2 if is_causal else flops

    def lstm_layer_flops(input_shape, input_weight_shape, hidden_weight_shape) -> int:
        rows = input_shape[0] * input_shape[1]  # batch x time, in either order
        return 2 * rows * input_weight_shape[0] * (input_weight_shape[1] + hidden_weight_shape[1])

    @flop_counter.register_flop_formula(aten.mkldnn_rnn_layer)
    def _lstm_forward(input_shape, weight0_shape, weight1_shape, *args, out_shape=None, **kwargs) -> int:
        return lstm_layer_flops(input_shape, weight0_shape, weight1_shape)

    @flop_counter.register_flop_formula(aten.mkldnn_rnn_layer_backward)
    def _lstm_backward(input_shape, weight1_shape, weight2_shape, *args, out_shape=None, **kwargs) -> int:
        return 2 * lstm_layer_flops(input_shape, weight1_shape, weight2_shape)


def model_gemm_shape(model, tokens: int) -> tuple[int, int, int]:
    """(tokens, hidden, intermediate): the feed-forward up-projection, the largest GEMM of a transformer block; for the
    LSTM baseline (no backbone), its gates' input projection (tokens, hidden, 4 x hidden)."""
    if not hasattr(model, "backbone"):
        return tokens, model.config.hidden_size, 4 * model.config.hidden_size
    config = model.backbone.config
    hidden = config.hidden_size
    return tokens, hidden, getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * hidden


class HeldActivations:
    """Counts the bytes a forward pass leaves alive for the backward: every tensor an op creates is tracked by
    a weak reference to its storage; what is still alive after the forward is what autograd (or a checkpoint
    cache) holds. Exact and immune to allocator noise, unlike peak RSS.

        with HeldActivations() as held:
            loss = model(**batch).loss
        held.megabytes()
    """

    def __enter__(self):
        from torch.multiprocessing.reductions import StorageWeakRef
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_flatten

        storages = self.storages = {}

        class Track(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                # an output sharing an input's storage is a view (a weight's transpose is the weight, not new memory)
                inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
                for t in tree_flatten(out)[0]:
                    if isinstance(t, torch.Tensor) and t.device.type != "meta" and t.untyped_storage().nbytes():
                        storage = t.untyped_storage()
                        if storage.data_ptr() in inputs:
                            continue
                        known = storages.get(storage.data_ptr())
                        if known is None or known[0].expired():  # new, or a freed block's address reused
                            storages[storage.data_ptr()] = (StorageWeakRef(storage), storage.nbytes())
                return out

        self._mode = Track()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        self._mode.__exit__(*exc)

    def bytes(self) -> int:
        return sum(size for ref, size in self.storages.values() if not ref.expired())

    def megabytes(self) -> float:
        return self.bytes() / 2**20


def reset_peak_rss() -> None:
    """Reset the kernel's high-water mark of this process's resident memory (Linux /proc/self/clear_refs)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # not Linux: the peak then includes loading


def peak_rss_mb() -> float:
    """This process's high-water mark of resident memory, in MiB (since the last `reset_peak_rss`, on Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_evaluations(arms: dict, rounds: int) -> tuple[dict, dict]:
    """`Trainer.evaluate` for each arm, `name -> (trainer, rows)`, interleaved over `rounds` (A B A B ...: every arm sees
    the machine in the same mood): `(median seconds, eval accuracy)` per arm name."""
    times, accuracy = {name: [] for name in arms}, {}
    for _ in range(rounds):
        for name, (trainer, rows) in arms.items():
            started = time.perf_counter()
            accuracy[name] = trainer.evaluate(rows)["eval_accuracy"]
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()}, accuracy
