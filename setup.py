"""Installs the `avatar` package and its console script.

`recipes/`, `cuda_ext/` and `viewer/` live at the top of the repository (they are not importable packages
on their own) and are shipped inside the package as `avatar.recipes`, `avatar.cuda_ext` and `avatar.viewer`.
"""
from setuptools import find_packages, setup

setup(
    name="avatar",
    version="0.1.0",
    description="A personal 3D talking-head avatar from a few minutes of ordinary video",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["avatar", "avatar.*"]) + ["avatar.recipes", "avatar.cuda_ext", "avatar.viewer"],
    package_dir={"avatar.recipes": "recipes", "avatar.cuda_ext": "cuda_ext", "avatar.viewer": "viewer"},
    package_data={"avatar.recipes": ["*.yaml"], "avatar.motion": ["prior.safetensors", "prior.json"], "avatar.cuda_ext": ["csrc/*", "*.py"]},
    install_requires=[
        # torch is pinned by the Makefile, which installs it first (see README): a plain `torch`
        # requirement resolved on its own would pull a multi-GB CUDA build.
        "torch>=2.4",
        "numpy>=1.26",
        "scipy>=1.11",
        "av>=18,<19",
        "soundfile>=0.12",
        "librosa==0.11.*",
        "soxr>=0.5",
        "mediapipe==1.2.2",
        "hama==1.7.0",
        "espeakng-loader==0.2.4",
        "safetensors>=0.4",
        "pyyaml>=6",
        "tqdm>=4.66",
        "tensorboard>=2.15",
        "kornia>=0.7",
        "ninja>=1.11",
        "gsplat==1.5.3",
        "dearpygui==2.3.1",  # the viewer's window (needs a display only when one opens)
        "miniaudio==1.71",  # the viewer's sound, with its C library inside the wheel
    ],
    extras_require={
        "dev": ["pytest>=8"],
        "ray": ["ray==2.60.*"],  # `avatar batch --engine ray`
    },
    entry_points={"console_scripts": ["avatar=avatar.cli:main"]},
)
