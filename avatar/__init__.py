"""avatar: a personal 3D talking-head avatar from a few minutes of ordinary video.

Importing the package is cheap: it loads no models and compiles nothing.
"""

__version__ = "0.1.0"
