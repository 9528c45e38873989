"""digits.serve: the page, the JSON API, TensorFlow Serving's REST and gRPC APIs, and batching."""
