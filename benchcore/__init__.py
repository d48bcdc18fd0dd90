"""The small core both sides of bench share: the typed measurement record, the metric registry and
(later) the model analysis. It imports neither `harness` nor `devices`; both import it."""
