"""One construct per concern; the pipeline stack composes them and wires the grants."""
