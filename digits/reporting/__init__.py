"""TensorBoard summaries, figures and reports."""
