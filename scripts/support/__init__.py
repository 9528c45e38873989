"""What the tests and scripts/ share: the browser, load clients, local clusters, benchmarks, handwriting
made on purpose. Not part of the digits package: the product cannot import it (a lint-imports contract says so too)."""
