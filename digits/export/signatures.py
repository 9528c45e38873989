"""The export's signatures: what each takes (its dtype and its largest pixel value), shared by the export,
its LiteRT files and the servers."""
import dataclasses

import numpy as np

FRAME = 28  # the signatures take [n, FRAME, FRAME] images: MNIST's frame


@dataclasses.dataclass(frozen=True)
class Signature:
    """What one signature takes: its dtype and the largest pixel value (0 is the smallest)."""
    name: str
    dtype: type
    top: float

    def to_model_input(self, pixels: np.ndarray) -> np.ndarray:
        """float32 in [0, 1], as serving_default takes it (and serving_uint8 computes: x / 255)."""
        return pixels.astype(np.float32) / np.float32(self.top) if self.dtype == np.uint8 else pixels


# The export's signatures (digits.export.saved_model saves them): each one's input dtype and its largest pixel value.
SIGNATURES = {name: Signature(name, np.dtype(dtype).type, top)
              for name, (dtype, top) in {'serving_default': ('float32', 1.0), 'serving_uint8': ('uint8', 255)}.items()}


DEFAULT_SIGNATURE = 'serving_default'
