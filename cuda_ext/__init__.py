"""Sources of the compiled kernels (csrc/), shipped as package data of `avatar.cuda_ext`.

Nothing here is imported to run the kernels: `avatar.ops._extension` finds these files through
importlib.resources and builds them on first use.
"""
