"""Models as files: teacher backbones, loading saved models, checking a given teacher's head, and the
student architecture spec."""
