"""Models: reading .tflite files, variant manifests, the bundled example family, inspect and prune."""
