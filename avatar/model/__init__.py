"""The Gaussian avatar: Gaussian sets, neural fields that move them, initialisation, storage."""
