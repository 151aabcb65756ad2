"""Data that is not on the Hugging Face Hub in a usable form: downloads (checked against recorded SHA-256
sums) and converters into the Hub-mirror layout under the data directory (``make data-*``; docs/xtreme_r.md,
docs/retrieval.md, docs/tagging.md). Each module writes one dataset and can read its own format back."""
