"""Build pipeline: declarative profile -> cached, reproducible node OS artifacts."""
