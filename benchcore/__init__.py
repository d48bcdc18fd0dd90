"""The small core both sides of bench share: the typed measurement record, the metric registry, the
tflite model analysis and the TFLM arena probe. It imports neither `harness` nor `devices`; both import it."""
