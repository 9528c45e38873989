"""A page to digits: decoding, preprocessing to MNIST's form, segmentation, the reader, and image files read."""
