"""The datasets digits knows, one DatasetSpec each: where its files come from (bundled with digits, or a
download), their checksums, its classes and its image shape. Everything else (flags, readers, models,
exports, reports) derives these facts from here.

Adding a dataset in the MNIST IDX format (EMNIST digits, Kuzushiji-MNIST) is one entry plus its test.
Imports nothing heavy: the flags take their choices from here before TensorFlow loads.
"""
import dataclasses
import os

NOT_A_DIGIT = 'not a digit'  # what a mark that is not a digit (label: the number of classes) is called in figures

KERAS_BASE = 'https://storage.googleapis.com/tensorflow/tf-keras-datasets/'
BUNDLED_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'bundled')
DIGIT_CLASSES = tuple(str(k) for k in range(10))


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One dataset: uint8 images of image_shape, labels 0 .. len(class_names) - 1."""
    name: str
    description: str  # what the data is, for a run's first line and results.json
    class_names: tuple[str, ...]
    # Its files with their checksums: either one Keras-style <name>.npz or the four IDX files
    # (arrays.IDX_NAMES, each .gz), in the bundled folder or under base_url.
    files: tuple[tuple[str, str], ...]
    bundled: str | None = None  # a folder under digits/data/bundled/ that ships with the package
    base_url: str | None = None  # else downloaded from here into ~/.keras/<cache_subdir>
    cache_subdir: str = 'datasets'
    image_shape: tuple[int, int] = (28, 28)
    # Marks that are not digits added to its training set (as a fraction of it) unless --negatives says
    # otherwise: they teach a digit model to refuse them (digits.training.negatives). 0 for classes of other things.
    negatives: float = 0.0

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def npz_name(self) -> str:
        """The Keras-style archive digits reads from --data_dir when the IDX files are not there."""
        return f'{self.name}.npz'

    @property
    def bundled_dir(self) -> str | None:
        return os.path.join(BUNDLED_ROOT, self.bundled) if self.bundled else None


MNIST_10K = DatasetSpec(  # digits/data/bundled/mnist_10k/README.md credits MNIST's authors (CC BY-SA 3.0).
    name='mnist_10k', class_names=DIGIT_CLASSES, bundled='mnist_10k', negatives=0.1,
    description='MNIST\'s 10,000-image training subset and official test set',
    files=(('train-images-idx3-ubyte.gz', 'a7278cb56fa770ea9c924dbe240b8f8c'),
           ('train-labels-idx1-ubyte.gz', 'b232918e4a6082e74f4f753fd5a0c5c0'),
           ('t10k-images-idx3-ubyte.gz', '9fb629c4189551a2d022fa330f9573f3'),
           ('t10k-labels-idx1-ubyte.gz', 'ec29112dd5afa0611ce80d1b7f02629c')))
MNIST = DatasetSpec(
    name='mnist', class_names=DIGIT_CLASSES, base_url=KERAS_BASE, negatives=0.1,
    description='MNIST\'s full 60,000-image training set and official test set',
    files=(('mnist.npz', '731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1'),))
FASHION_MNIST = DatasetSpec(  # Keras checks no hashes for it; these MD5s are Zalando's.
    name='fashion_mnist', base_url=KERAS_BASE, cache_subdir=os.path.join('datasets', 'fashion-mnist'),
    description='Fashion-MNIST\'s 60,000 training and 10,000 test images of clothes',
    class_names=('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
                 'Ankle boot'),
    files=(('train-images-idx3-ubyte.gz', '8d4fb7e6c68d591d4c3dfef9ec88bf0d'),
           ('train-labels-idx1-ubyte.gz', '25c81989df183df01b3e8a0aad5dffbe'),
           ('t10k-images-idx3-ubyte.gz', 'bef4ecab320f06d8554ea6380940ec79'),
           ('t10k-labels-idx1-ubyte.gz', 'bb300cfdad3c16e7a12a480ee83cd310')))
DATASETS = {spec.name: spec for spec in (MNIST_10K, MNIST, FASHION_MNIST)}
DEFAULT = MNIST_10K.name  # what a run reads with no --dataset: it needs no download
