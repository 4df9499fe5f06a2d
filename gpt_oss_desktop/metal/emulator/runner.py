"""`MetalKernel`: `mx.fast.metal_kernel` run on the CPU through the shim.

It builds MLX's exact Metal text (signature.py), translates it to C++ (translate.py), compiles
it once per variant (build.py) and dispatches it like MLX does: `grid` counts threads, the
threadgroup is min(threadgroup, grid) per axis and edge threadgroups are smaller.
"""

from __future__ import annotations

import ctypes
import os
import re
from dataclasses import dataclass
from typing import Any, Sequence

import mlx.core as mx
import numpy as np

from gpt_oss_desktop.metal.emulator import arrays, build, runtime
from gpt_oss_desktop.metal.emulator.errors import (
    DispatchError,
    KernelExecutionError,
    MetalCompileError,
    ScheduleDisagreement,
)
from gpt_oss_desktop.metal.emulator.runtime import Schedule
from gpt_oss_desktop.metal.emulator.signature import (
    GeneratedKernel,
    InputLayout,
    TemplateValue,
    generate,
    verbose_listing,
)
from gpt_oss_desktop.metal.emulator.translate import translate

MAX_THREADS_PER_THREADGROUP = 1024

# Every schedule run_all_schedules tries: fiber order forward, reverse and two random orders.
ALL_SCHEDULES: tuple[tuple[Schedule, int], ...] = (
    ("forward", 0),
    ("reverse", 0),
    ("random", 1),
    ("random", 2),
)


@dataclass(frozen=True)
class _Compiled:
    library: ctypes.CDLL
    uses_fibers: bool


def _workers(threadgroups: int) -> int:
    configured = os.environ.get("METAL_EMULATOR_WORKERS")
    available = int(configured) if configured else (os.cpu_count() or 1)
    return max(1, min(available, threadgroups))


def _dims(value: Sequence[int], what: str, kernel: str) -> tuple[int, int, int]:
    dims = tuple(int(v) for v in value)
    if len(dims) != 3:
        raise DispatchError(f"kernel {kernel!r}: {what} must have 3 dimensions, got {value!r}")
    if any(d < 0 or d >= 2**32 for d in dims):
        raise DispatchError(f"kernel {kernel!r}: {what} {dims} is out of range")
    return dims  # type: ignore[return-value]


def _mismatches(
    expected: mx.array, actual: mx.array, rtol: float, atol: float, kernel: str
) -> np.ndarray:
    """Flat mask of the elements that differ: in their bits, or beyond the tolerances."""
    if rtol == 0.0 and atol == 0.0:
        a = arrays.to_host(expected, kernel)[0].reshape(-1)
        b = arrays.to_host(actual, kernel)[0].reshape(-1)
        shape = (a.size, a.itemsize)
        return (a.view(np.uint8).reshape(shape) != b.view(np.uint8).reshape(shape)).any(axis=1)
    a, b = (np.array(x.astype(mx.float32)).reshape(-1) for x in (expected, actual))
    return ~np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


class MetalKernel:
    """Same constructor and call as `mx.fast.metal_kernel`, run by the emulator.

    Extra call options: `schedule` ("forward", "reverse" or "random") picks the order in which
    the threads of a threadgroup run between synchronisation points (and the order of the
    threadgroups), `seed` seeds "random", `workers` sets the number of OS threads.
    """

    def __init__(
        self,
        name: str,
        input_names: Sequence[str],
        output_names: Sequence[str],
        source: str,
        header: str = "",
        ensure_row_contiguous: bool = True,
        atomic_outputs: bool = False,
    ) -> None:
        if not output_names:
            raise DispatchError("[metal_kernel] Must specify at least one output.")
        if not re.fullmatch(r"\w+", name):
            raise DispatchError(f"kernel name {name!r} must be an identifier")
        self.name = name
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.source = source
        self.header = header
        self.ensure_row_contiguous = ensure_row_contiguous
        self.atomic_outputs = atomic_outputs
        self._compiled: dict[str, _Compiled] = {}

    def generated_source(
        self,
        *,
        inputs: Sequence[Any],
        output_dtypes: Sequence[mx.Dtype],
        template: Sequence[tuple[str, TemplateValue]] | None = None,
    ) -> str:
        """The Metal text MLX would generate (and compile) for a call with these arguments."""
        host_inputs = [arrays.to_host(value, self.name) for value in inputs]
        return self._generate(host_inputs, output_dtypes, template).source

    def __call__(
        self,
        *,
        inputs: Sequence[Any],
        output_shapes: Sequence[Sequence[int]],
        output_dtypes: Sequence[mx.Dtype],
        grid: Sequence[int],
        threadgroup: Sequence[int],
        template: Sequence[tuple[str, TemplateValue]] | None = None,
        init_value: float | None = None,
        verbose: bool = False,
        schedule: Schedule = "forward",
        seed: int = 0,
        workers: int | None = None,
    ) -> list[mx.array]:
        self._check_counts(inputs, output_shapes, output_dtypes)
        grid_dims = _dims(grid, "grid", self.name)
        group_dims = _dims(threadgroup, "threadgroup", self.name)
        if 0 in group_dims:
            raise DispatchError(f"kernel {self.name!r}: threadgroup {group_dims} has a zero size")
        group_size = group_dims[0] * group_dims[1] * group_dims[2]
        if group_size > MAX_THREADS_PER_THREADGROUP:
            raise DispatchError(
                f"kernel {self.name!r}: Thread group size ({group_size}) is greater than the "
                f"maximum allowed threads per threadgroup ({MAX_THREADS_PER_THREADGROUP})."
            )

        host_inputs = [arrays.to_host(value, self.name) for value in inputs]
        generated = self._generate(host_inputs, output_dtypes, template)
        if verbose:
            print(verbose_listing(self.name, generated.source), end="")
        compiled = self._compile(generated)

        outputs = [
            arrays.new_output(shape, dtype, init_value, self.name)
            for shape, dtype in zip(output_shapes, output_dtypes)
        ]
        buffers = self._buffers(generated, [host for host, _ in host_inputs], outputs)
        threadgroups = 1
        for g, t in zip(grid_dims, group_dims):
            threadgroups *= -(-g // min(g, t)) if g else 0
        if threadgroups:
            error = runtime.launch(
                compiled.library,
                buffers,
                grid=grid_dims,
                threadgroup=group_dims,
                schedule=schedule,
                seed=seed,
                workers=workers or _workers(threadgroups),
                uses_fibers=compiled.uses_fibers,
            )
            if error is not None:
                raise KernelExecutionError(f"kernel {self.name!r}: {error}")
        return [arrays.to_mlx(buffer, dtype) for buffer, dtype in zip(outputs, output_dtypes)]

    def run_all_schedules(
        self, *, rtol: float = 0.0, atol: float = 0.0, **call: Any
    ) -> list[mx.array]:
        """Runs the call under every schedule in ALL_SCHEDULES and checks the outputs agree.

        Agreement is bit-exact unless a tolerance is given (use one for float atomics, whose
        order varies). Raises ScheduleDisagreement, which usually means a missing barrier.
        Returns the outputs of the forward schedule.
        """
        runs = [(s, seed, self(**call, schedule=s, seed=seed)) for s, seed in ALL_SCHEDULES]
        _, _, reference = runs[0]
        for schedule, seed, outputs in runs[1:]:
            label = f"{schedule}(seed={seed})"
            for name, expected, actual in zip(self.output_names, reference, outputs):
                self._check_agreement(name, expected, actual, label, rtol, atol)
        return reference

    def _check_agreement(
        self,
        output: str,
        expected: mx.array,
        actual: mx.array,
        schedule: str,
        rtol: float,
        atol: float,
    ) -> None:
        mismatch = _mismatches(expected, actual, rtol, atol, self.name)
        if mismatch.any():
            first = int(np.argmax(mismatch))
            index = tuple(int(i) for i in np.unravel_index(first, expected.shape))
            raise ScheduleDisagreement(
                f"kernel {self.name!r}: output {output!r} differs between the forward schedule "
                f"and {schedule} in {int(mismatch.sum())} of {expected.size} elements; first at "
                f"{index}: {expected[index].item()} vs {actual[index].item()}"
            )

    def _check_counts(
        self,
        inputs: Sequence[Any],
        output_shapes: Sequence[Sequence[int]],
        output_dtypes: Sequence[mx.Dtype],
    ) -> None:
        for what, given, expected in (
            ("inputs", inputs, self.input_names),
            ("output_shapes", output_shapes, self.output_names),
            ("output_dtypes", output_dtypes, self.output_names),
        ):
            if len(given) != len(expected):
                raise DispatchError(
                    f"kernel {self.name!r}: Expected `{what}` to have size {len(expected)} but "
                    f"got size {len(given)}."
                )

    def _generate(
        self,
        host_inputs: Sequence[tuple[np.ndarray, mx.Dtype]],
        output_dtypes: Sequence[mx.Dtype],
        template: Sequence[tuple[str, TemplateValue]] | None,
    ) -> GeneratedKernel:
        try:
            return generate(
                name=self.name,
                input_names=self.input_names,
                output_names=self.output_names,
                source=self.source,
                header=self.header,
                atomic_outputs=self.atomic_outputs,
                inputs=[InputLayout(dtype, host.ndim, host.size) for host, dtype in host_inputs],
                output_dtypes=list(output_dtypes),
                template=list(template or ()),
            )
        except ValueError as error:
            raise DispatchError(f"kernel {self.name!r}: {error}") from error

    def _compile(self, generated: GeneratedKernel) -> _Compiled:
        if generated.malformed:
            raise MetalCompileError(
                f"kernel {self.name!r}: MLX generates a malformed signature for this call (it "
                "closes the parameter list after the first output when inputs pass "
                "_shape/_strides/_ndim, there are several outputs and no attribute is used); "
                "use an attribute such as thread_position_in_grid in the source"
            )
        if generated.source not in self._compiled:
            translated = translate(generated, self.name)
            library = build.build(translated.cpp, self.name, generated.definition)
            self._compiled[generated.source] = _Compiled(library, translated.uses_fibers)
        return self._compiled[generated.source]

    def _buffers(
        self,
        generated: GeneratedKernel,
        inputs: Sequence[np.ndarray],
        outputs: Sequence[np.ndarray],
    ) -> list[np.ndarray]:
        """The buffers in MLX's binding order: inputs (each followed by its referenced
        shape, strides, ndim), then outputs."""
        by_name: dict[str, np.ndarray] = {}
        for name, host in zip(self.input_names, inputs):
            if self.ensure_row_contiguous:
                host = np.ascontiguousarray(host)
            elif not arrays.is_row_contiguous(host) and f"{name}_strides" not in self.source:
                raise DispatchError(
                    f"kernel {self.name!r}: input {name!r} arrives as a strided view "
                    f"(shape {host.shape}, strides {tuple(s // host.itemsize for s in host.strides)}"
                    ") but the kernel, built with ensure_row_contiguous=False, never reads "
                    f"{name}_strides, so on Metal it would read the buffer as row-contiguous; "
                    "make the input contiguous or index it through its strides"
                )
            by_name[name] = host
            by_name[f"{name}_shape"] = np.array(host.shape, dtype=np.int32)
            by_name[f"{name}_strides"] = np.array(
                [s // host.itemsize for s in host.strides], dtype=np.int64
            )
            by_name[f"{name}_ndim"] = np.array(host.ndim, dtype=np.int32)
        by_name.update(zip(self.output_names, outputs))
        return [by_name[buffer.name] for buffer in generated.buffers]
