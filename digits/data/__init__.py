"""Datasets: the registry, the arrays (read without TensorFlow), the tf.data pipelines, and the bundled files."""
