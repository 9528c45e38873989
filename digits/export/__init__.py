"""What training hands to reading: the SavedModel, its signatures, and its LiteRT files."""
