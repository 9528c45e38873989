"""The datasets digits knows, one DatasetSpec each: where to download it, its checksums, its classes and
its image shape. Everything else (flags, readers, models, exports, reports) derives these facts from here.

Adding a dataset in the MNIST IDX format (EMNIST digits, Kuzushiji-MNIST) is one entry plus its test.
Imports nothing heavy: the flags take their choices from here before TensorFlow loads.
"""
import dataclasses
import os

KERAS_BASE = 'https://storage.googleapis.com/tensorflow/tf-keras-datasets/'


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One dataset: uint8 images of image_shape, labels 0 .. len(class_names) - 1."""
    name: str
    class_names: tuple[str, ...]
    # What to download without --data_dir: (file name under base_url, published checksum). Either one
    # Keras-style <name>.npz or the four IDX files (data.IDX_NAMES, each .gz).
    files: tuple[tuple[str, str], ...]
    cache_subdir: str  # under ~/.keras
    base_url: str = KERAS_BASE
    image_shape: tuple[int, int] = (28, 28)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def npz_name(self) -> str:
        """The Keras-style archive digits reads from --data_dir when the IDX files are not there."""
        return f'{self.name}.npz'


MNIST = DatasetSpec(
    name='mnist', class_names=tuple(str(k) for k in range(10)), cache_subdir='datasets',
    files=(('mnist.npz', '731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1'),))
FASHION_MNIST = DatasetSpec(  # Keras checks no hashes for it; these MD5s are Zalando's.
    name='fashion_mnist', cache_subdir=os.path.join('datasets', 'fashion-mnist'),
    class_names=('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
                 'Ankle boot'),
    files=(('train-images-idx3-ubyte.gz', '8d4fb7e6c68d591d4c3dfef9ec88bf0d'),
           ('train-labels-idx1-ubyte.gz', '25c81989df183df01b3e8a0aad5dffbe'),
           ('t10k-images-idx3-ubyte.gz', 'bef4ecab320f06d8554ea6380940ec79'),
           ('t10k-labels-idx1-ubyte.gz', 'bb300cfdad3c16e7a12a480ee83cd310')))
DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}
