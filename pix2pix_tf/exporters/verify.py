"""Verification of written artifacts against Keras: one report row per artifact."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ArtifactReport:
    """What verification measured for one artifact."""

    name: str
    path: str
    size_bytes: int
    max_abs_diff: float
    psnr_vs_keras: float
    psnr_vs_target: float = None
    psnr_drop: float = None
    latency_ms: float = None
    notes: list = field(default_factory=list)

    def row(self):
        """One line of the summary; what was not measured is left blank."""
        def shown(value, spec):
            return "-" if value is None or value != value else format(value, spec)

        size = "-" if self.name == "keras" else f"{self.size_bytes / 1e6:.2f}"
        return (f"{self.name:22s} {size:>9s} {shown(self.max_abs_diff, '.2e'):>12s} "
                f"{shown(self.psnr_vs_keras, '.2f'):>10s} {shown(self.psnr_drop, '+.3f'):>10s} "
                f"{shown(self.latency_ms, '.1f'):>10s}")


HEADER = (f"{'artifact':22s} {'size (MB)':>9s} {'max|diff|':>12s} {'PSNR/keras':>10s} "
          f"{'dPSNR tgt':>10s} {'ms/image':>10s}")


def psnr(a, b):
    """PSNR in dB of two [-1, 1] image arrays, measured on [0, 1]."""
    mse = float(np.mean(((np.asarray(a) + 1) / 2 - (np.asarray(b) + 1) / 2) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def size_of(path):
    """Bytes of a file, or of every file under a folder."""
    return (sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir()
            else path.stat().st_size)


def compare(name, path, outputs, ms, reference, targets=None, keras_psnr=None):
    """The report of an artifact whose ``outputs`` were computed from the images that gave
    Keras' ``reference`` outputs."""
    report = ArtifactReport(name, str(path), size_of(path),
                            float(np.max(np.abs(outputs - reference))), psnr(outputs, reference),
                            latency_ms=ms)
    if targets is not None:
        report.psnr_vs_target = psnr(outputs, targets)
        report.psnr_drop = keras_psnr - report.psnr_vs_target
    return report
